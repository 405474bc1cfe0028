/* FirstStepAhead: eager.py's _FirstStepAhead in C (see eager.py for what it is for).
 *
 * It stands in for a request task's coroutine and replays a first step already
 * taken. In Python every request paid for it: a Python send() called by the task,
 * a StopIteration raised to return, a bound method and a context switch per step.
 * Here the task reaches it through the am_send slot (PyIter_Send), which returns
 * without raising, and the first step enters the task's context itself.
 *
 * The two must behave the same: tests/protocol/test_eager.py runs every case on
 * both.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "_eager.h"

enum { NOT_STARTED, SUSPENDED, RETURNED, RAISED, RUNNING };

typedef struct {
    PyObject_HEAD
    PyObject *coro;
    PyObject *context;
    PyObject *outcome; /* what the first step yielded or returned */
    PyObject *exc_type, *exc_value, *exc_tb; /* what it raised */
    int state;
} FirstStep;

static void
fs_clear_outcome(FirstStep *self)
{
    Py_CLEAR(self->outcome);
    Py_CLEAR(self->exc_type);
    Py_CLEAR(self->exc_value);
    Py_CLEAR(self->exc_tb);
}

static int
fs_init(FirstStep *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"coro", "context", NULL};
    PyObject *coro, *context;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!:FirstStepAhead", kwlist, &coro,
                                     &PyContext_Type, &context))
        return -1;
    Py_XSETREF(self->coro, Py_NewRef(coro));
    Py_XSETREF(self->context, Py_NewRef(context));
    fs_clear_outcome(self);
    self->state = NOT_STARTED;
    return 0;
}

static int
fs_traverse(FirstStep *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->coro);
    Py_VISIT(self->context);
    Py_VISIT(self->outcome);
    Py_VISIT(self->exc_type);
    Py_VISIT(self->exc_value);
    Py_VISIT(self->exc_tb);
    return 0;
}

static int
fs_clear(FirstStep *self)
{
    Py_CLEAR(self->coro);
    Py_CLEAR(self->context);
    fs_clear_outcome(self);
    return 0;
}

static void
fs_dealloc(FirstStep *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    fs_clear(self);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

/* A runner never initialised, or cleared by the collector, has no coroutine. */
static int
fs_check(FirstStep *self)
{
    if (self->coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "FirstStepAhead has no coroutine");
        return -1;
    }
    return 0;
}

/* Take the first step now, in the task's context; keep what it gave for the task. */
static PyObject *
fs_first_step(FirstStep *self, PyObject *Py_UNUSED(ignored))
{
    if (fs_check(self) < 0)
        return NULL;
    if (self->state != NOT_STARTED) {
        PyErr_SetString(PyExc_RuntimeError, "the first step was taken already");
        return NULL;
    }
    if (PyContext_Enter(self->context) < 0)
        return NULL;
    PyObject *result = NULL;
    PySendResult sent = PyIter_Send(self->coro, Py_None, &result);
    if (sent == PYGEN_ERROR)
        PyErr_Fetch(&self->exc_type, &self->exc_value, &self->exc_tb);
    if (PyContext_Exit(self->context) < 0) {
        Py_XDECREF(result);
        return NULL;
    }
    if (sent == PYGEN_ERROR) {
        self->state = RAISED;
    } else {
        self->outcome = result;
        self->state = sent == PYGEN_NEXT ? SUSPENDED : RETURNED;
    }
    Py_RETURN_NONE;
}

static PySendResult
fs_am_send(FirstStep *self, PyObject *value, PyObject **result)
{
    if (fs_check(self) < 0) {
        *result = NULL;
        return PYGEN_ERROR;
    }
    int state = self->state;
    if (state == RUNNING || state == NOT_STARTED)
        return PyIter_Send(self->coro, value, result);
    self->state = RUNNING;
    if (state == RAISED) {
        PyErr_Restore(self->exc_type, self->exc_value, self->exc_tb);
        self->exc_type = self->exc_value = self->exc_tb = NULL;
        *result = NULL;
        return PYGEN_ERROR;
    }
    *result = self->outcome; /* (the reference passes to the caller) */
    self->outcome = NULL;
    return state == SUSPENDED ? PYGEN_NEXT : PYGEN_RETURN;
}

/* A coroutine's send(): a return comes out as StopIteration. */
static PyObject *
fs_send(FirstStep *self, PyObject *value)
{
    PyObject *result = NULL;
    PySendResult sent = fs_am_send(self, value, &result);
    if (sent != PYGEN_RETURN)
        return result;
    if (result == Py_None) {
        Py_DECREF(result);
        PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
    Py_DECREF(result);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return NULL;
}

static PyObject *
fs_throw(FirstStep *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (fs_check(self) < 0)
        return NULL;
    if (self->state == RETURNED || self->state == RAISED) /* finished: too late to throw into */
        return fs_send(self, Py_None);
    self->state = RUNNING;
    fs_clear_outcome(self);
    PyObject *throw = PyObject_GetAttrString(self->coro, "throw");
    if (throw == NULL)
        return NULL;
    PyObject *result = PyObject_Vectorcall(throw, args, nargs, NULL);
    Py_DECREF(throw);
    return result;
}

static PyObject *
fs_close(FirstStep *self, PyObject *Py_UNUSED(ignored))
{
    fs_clear_outcome(self);
    if (self->coro == NULL)
        Py_RETURN_NONE;
    return PyObject_CallMethod(self->coro, "close", NULL);
}

static PyObject *
fs_await(FirstStep *self)
{
    PyErr_SetString(PyExc_TypeError, "a request task's coroutine is driven by its task only");
    return NULL;
}

static PyMethodDef fs_methods[] = {
    {"first_step", (PyCFunction)fs_first_step, METH_NOARGS,
     "Take the coroutine's first step now, in the task's context."},
    {"send", (PyCFunction)fs_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))fs_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)fs_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef fs_members[] = {
    {"coro", T_OBJECT, offsetof(FirstStep, coro), READONLY, NULL},
    {"context", T_OBJECT, offsetof(FirstStep, context), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot fs_slots[] = {
    {Py_tp_doc, "Stands in for coro in its task, replaying a first step already taken."},
    {Py_tp_init, fs_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, fs_dealloc},
    {Py_tp_traverse, fs_traverse},
    {Py_tp_clear, fs_clear},
    {Py_tp_methods, fs_methods},
    {Py_tp_members, fs_members},
    {Py_am_send, fs_am_send},
    {Py_am_await, fs_await},
    {0, NULL},
};

static PyType_Spec fs_spec = {
    .name = "server.protocol._chead.FirstStepAhead",
    .basicsize = sizeof(FirstStep),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = fs_slots,
};

int
eager_add_types(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &fs_spec, NULL);
    if (type == NULL)
        return -1;
    int added = PyModule_AddObjectRef(module, "FirstStepAhead", type);
    Py_DECREF(type);
    return added;
}
