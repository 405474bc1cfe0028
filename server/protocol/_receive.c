/* receiver(): the connection's ``data_received``, compiled, as a method of its class (a method
 * descriptor, as a C type's methods are: the loop's call runs no Python frame). Its common case,
 * bytes that are one whole request head on a connection reading requests: the head parsed by
 * whole_head and its events handled by handle_events, each with its own reference, as the Python
 * ``data_received`` does. That method is its reference (``server.data_received_py``), and runs for
 * everything else: an upgraded, lingering or failed connection, a PROXY protocol header still
 * awaited, bytes that are not one whole head, a body's among them: whole_head declines those, and
 * the reference asks it again, which costs a look at the parser's state, then feeds them. */
#include <Python.h>

#include "_answer.h"

static const char *const SLOTS[] = {"_upgraded", "_linger_left", "_input_failed", "_proxy_buffer", "_received_any",
                                    "_parser"};
enum slot { R_UPGRADED, R_LINGER_LEFT, R_INPUT_FAILED, R_PROXY_BUFFER, R_RECEIVED_ANY, R_PARSER, N_R };
static const char *const NAMES[] = {"_reject"};
enum name { N_REJECT, N_N };

static struct {
    PyTypeObject *channel_type;
    Py_ssize_t slot[N_R];
    PyObject *name[N_N];
    PyObject *reference, *whole_head, *handle_events, *http_error;
} R;

#define RS(obj, index) SLOT(obj, R.slot[index])

/* Whether the common case applies: a connection reading requests. (A body being timed, whose
 * timer the reference touches, is in a parser waiting for the body: whole_head declines it.) */
static int
common(PyObject *channel)
{
    for (int k = 0; k < N_R; k++) {
        if (RS(channel, k) == NULL)
            return 0;  /* (the reference raises the AttributeError) */
    }
    PyObject *linger = RS(channel, R_LINGER_LEFT);
    return RS(channel, R_UPGRADED) == Py_None && RS(channel, R_INPUT_FAILED) == Py_False &&
           RS(channel, R_PROXY_BUFFER) == Py_None && PyLong_CheckExact(linger) && PyLong_AsLong(linger) == 0;
}

/* The Python method, for what the C does not take (a body's pieces among them: one call each). */
static PyObject *
reference(PyObject *channel, PyObject *data)
{
    PyObject *args[] = {channel, data};
    return PyObject_Vectorcall(R.reference, args, 2, NULL);
}

/* ``channel._reject(exc)`` of the HttpError being raised; NULL for any other exception. */
static PyObject *
reject(PyObject *channel)
{
    if (!PyErr_ExceptionMatches(R.http_error))
        return NULL;
    PyObject *value = caught();
    PyObject *done = PyObject_CallMethodOneArg(channel, R.name[N_REJECT], value);
    Py_DECREF(value);
    return done;
}

static PyObject *
receive(PyObject *channel, PyObject *data)
{
    if (!common(channel))
        return reference(channel, data);
    set_slot(channel, R.slot[R_RECEIVED_ANY], Py_True);
    PyObject *args[] = {RS(channel, R_PARSER), data};
    Py_INCREF(args[0]);
    PyObject *events = PyObject_Vectorcall(R.whole_head, args, 2, NULL);
    Py_DECREF(args[0]);
    if (events == NULL)
        return reject(channel);
    if (events == Py_None) {  /* (not one whole head: the reference's way, whole_head declining again) */
        Py_DECREF(events);
        return reference(channel, data);
    }
    /* (whole_head's events are those of its one whole head, never none; nothing stays buffered
     * after it, so the reference's pause for pipelined bytes never applies) */
    PyObject *call[] = {channel, events};
    PyObject *done = PyObject_Vectorcall(R.handle_events, call, 2, NULL);
    Py_DECREF(events);
    return done;
}

static PyMethodDef receive_def = {
    "data_received", (PyCFunction)receive, METH_O,
    "data_received(data)\n--\n\nThe connection's data_received, compiled (see _receive.c); its reference is\n"
    "server.data_received_py."};

const char receiver_doc[] =
    "receiver($module, channel_type, reference, whole_head, handle_events, http_error, /)\n"
    "--\n"
    "\n"
    "The compiled data_received of server.ServerHttpProtocol, a method of channel_type: reference is\n"
    "the Python method it stands for, whole_head and handle_events what it calls, http_error the\n"
    "exception it rejects a request for (see _receive.c).";

PyObject *
receiver(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyType_Check(args[0]) || !PyCallable_Check(args[1]) || !PyCallable_Check(args[2]) ||
        !PyCallable_Check(args[3]) || !PyExceptionClass_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "receiver(channel_type, reference, whole_head, handle_events, http_error)");
        return NULL;
    }
    Py_ssize_t slot[N_R];
    if (offsets_of(args[0], SLOTS, N_R, slot) < 0 || interned(NAMES, N_N, R.name) < 0)
        return NULL;
    memcpy(R.slot, slot, sizeof(slot));
    Py_XSETREF(R.reference, Py_NewRef(args[1]));
    Py_XSETREF(R.whole_head, Py_NewRef(args[2]));
    Py_XSETREF(R.handle_events, Py_NewRef(args[3]));
    Py_XSETREF(R.http_error, Py_NewRef(args[4]));
    Py_XSETREF(R.channel_type, (PyTypeObject *)Py_NewRef(args[0]));
    return PyDescr_NewMethod(R.channel_type, &receive_def);
}
