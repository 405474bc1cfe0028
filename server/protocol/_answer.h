/* _answer.c's part of the _chead module: answer_whole(), answer_exchange(), response_finished() and what
 * they are registered
 * with (see server.py and wsgi/exchange.py). */
#ifndef ASYNCWORKER_ANSWER_H
#define ASYNCWORKER_ANSWER_H

#include <Python.h>

PyObject *answer_whole(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *set_channel_type(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *answer_exchange(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *finish_response(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *set_exchange_type(PyObject *module, PyObject *exchange_type);
extern const char answer_whole_doc[];
extern const char answer_exchange_doc[];
extern const char finish_response_doc[];
extern const char set_exchange_type_doc[];
/* _chead.c's: the offset of a writable object slot of ``type``, or -1 with TypeError set. */
Py_ssize_t object_slot_offset(PyObject *type, const char *name);
extern const char set_channel_type_doc[];

#endif
