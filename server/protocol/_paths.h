/* The part of the _chead module of _exchange.c (run_exchange(), bound in wsgi/exchange.py), and
 * what it is registered with. */
#ifndef ASYNCWORKER_PATHS_H
#define ASYNCWORKER_PATHS_H

#include <Python.h>

PyObject *run_exchange(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *set_exchange_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char run_exchange_doc[];
extern const char set_exchange_parts_doc[];

#endif
