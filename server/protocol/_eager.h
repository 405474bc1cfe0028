/* _eager.c's part of the _chead module: the FirstStepAhead type (see eager.py). */
#ifndef ASYNCWORKER_EAGER_H
#define ASYNCWORKER_EAGER_H

#include <Python.h>

int eager_add_types(PyObject *module);

#endif
