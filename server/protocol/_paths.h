/* The parts of the _chead module of _dispatch.c (handle_events(), bound in server.py), of
 * _exchange.c (run_exchange(), bound in wsgi/exchange.py) and of _send.c (asgi_sender(), bound in
 * asgi/exchange.py), and what each is registered with. */
#ifndef ASYNCWORKER_PATHS_H
#define ASYNCWORKER_PATHS_H

#include <Python.h>

PyObject *handle_events(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *set_dispatch_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char handle_events_doc[];
extern const char set_dispatch_parts_doc[];

PyObject *run_exchange(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *set_exchange_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char run_exchange_doc[];
extern const char set_exchange_parts_doc[];

PyObject *asgi_sender(PyObject *module, PyObject *exchange);
PyObject *set_sender_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char asgi_sender_doc[];
extern const char set_sender_parts_doc[];

#endif
