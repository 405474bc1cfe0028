/* handle_events(): ``channel._handle_events(events)`` compiled for the common case, the events of
 * one whole request without a body, as the bytes of its head bring them (its RequestHead and its
 * EndOfMessage): _start_request's steps (the head taken, the client resolved, the app kind's
 * on_request), the end's (the timer stopped), the first step of a task the kind started, and the
 * next pipelined request's events, by the method. Those methods are its reference: it does what
 * they do, in their order, and calls ``_handle_events`` for any other events, for a connection that
 * records requests (the access log), checks methods or header names, and for a subclass that
 * replaces one of them. See server.py. */
#include <Python.h>

#include "_answer.h"
#include "_paths.h"

static const char *const SLOTS[] = {"_dispatching", "_head", "idle_until", "_record_requests", "_continue_pending",
                                    "request_forwarded", "config", "app", "_sink", "_timer", "_body_pending",
                                    "_first_step", "loop", "_advance_pending"};
enum slot {
    C_DISPATCHING, C_HEAD, C_IDLE_UNTIL, C_RECORD_REQUESTS, C_CONTINUE_PENDING, C_REQUEST_FORWARDED, C_CONFIG, C_APP,
    C_SINK, C_TIMER, C_BODY_PENDING, C_FIRST_STEP, C_LOOP, C_ADVANCE_PENDING, N_C
};
static const char *const NAMES[] = {"_handle_events", "has_body", "expect_continue", "_resolve_forwarded", "error",
                                    "_peer_checked", "on_request", "phase", "_next_events",
                                    "allowed_methods", "refuse_underscores"};
enum name {
    S_HANDLE_EVENTS, S_HAS_BODY, S_EXPECT_CONTINUE, S_RESOLVE_FORWARDED, S_ERROR, S_PEER_CHECKED, S_ON_REQUEST, S_PHASE,
    S_NEXT_EVENTS, S_ALLOWED_METHODS, S_REFUSE_UNDERSCORES, N_S
};
/* The channel type's methods it stands for: a subclass that replaces one of them is declined. */
static const char *const OWN_METHODS[] = {"_handle_events", "_start_request"};
#define N_OWN ((int)(sizeof(OWN_METHODS) / sizeof(OWN_METHODS[0])))

static PyObject *own_methods[N_OWN];
static struct {
    PyTypeObject *head_type, *end_type;
    Py_ssize_t slot[N_C];
    PyObject *name[N_S];
    PyObject *null_sink, *step_now;
    struct verdicts own;
} D = {.own = {.count = N_OWN, .names = OWN_METHODS, .methods = own_methods}};

#define C(obj, index) SLOT(obj, D.slot[index])
#define set_c(obj, index, value) set_slot(obj, D.slot[index], value)
#define attr_true(obj, which) attribute_true(obj, D.name[which])

/* Whether the C takes these events: a registered channel's, one bodyless request's head and end,
 * nothing dispatching or recorded, no method or header name to check (1, 0; -1 on an error). */
static int
taken(PyObject *channel, PyObject *events)
{
    if (D.head_type == NULL || !PyList_CheckExact(events) || PyList_GET_SIZE(events) != 2 ||
        Py_TYPE(PyList_GET_ITEM(events, 0)) != D.head_type || Py_TYPE(PyList_GET_ITEM(events, 1)) != D.end_type)
        return 0;
    int ok = judged(&D.own, Py_TYPE(channel));
    if (ok <= 0)
        return ok;
    for (int k = 0; k < N_C; k++) {
        if (C(channel, k) == NULL)
            return 0;  /* (the method raises the AttributeError) */
    }
    if (C(channel, C_DISPATCHING) != Py_False || C(channel, C_RECORD_REQUESTS) != Py_False ||
        C(channel, C_BODY_PENDING) != Py_False)
        return 0;
    PyObject *config = C(channel, C_CONFIG);
    PyObject *allowed = PyObject_GetAttr(config, D.name[S_ALLOWED_METHODS]);
    if (allowed == NULL)
        return -1;
    ok = allowed == Py_None;
    Py_DECREF(allowed);
    if (ok && (ok = attr_true(config, S_REFUSE_UNDERSCORES)) >= 0)
        ok = !ok;
    if (ok > 0 && (ok = attr_true(PyList_GET_ITEM(events, 0), S_HAS_BODY)) >= 0)
        ok = !ok;
    return ok;
}

/* _start_request(head) of a bodyless head, neither recorded nor checked: 0, or -1 with the error set. */
static int
start_request(PyObject *channel, PyObject *head)
{
    set_c(channel, C_HEAD, head);
    set_c(channel, C_IDLE_UNTIL, Py_None);
    PyObject *expect = PyObject_GetAttr(head, D.name[S_EXPECT_CONTINUE]);
    if (expect == NULL)
        return -1;
    set_c(channel, C_CONTINUE_PENDING, expect);
    Py_DECREF(expect);
    PyObject *forwarded = PyObject_CallMethodOneArg(channel, D.name[S_RESOLVE_FORWARDED], head);
    if (forwarded == NULL)
        return -1;
    PyObject *pair = PyTuple_Pack(2, head, forwarded), *error = PyObject_GetAttr(forwarded, D.name[S_ERROR]);
    Py_DECREF(forwarded);
    if (pair != NULL)
        set_c(channel, C_REQUEST_FORWARDED, pair);
    Py_XDECREF(pair);
    if (pair == NULL || error == NULL) {
        Py_XDECREF(error);
        return -1;
    }
    int go = 1;
    if (error != Py_None) {  /* (refuse_underscores is off: taken() looked) */
        PyObject *checked = PyObject_CallMethodOneArg(channel, D.name[S_PEER_CHECKED], head);
        go = checked == NULL ? -1 : PyObject_IsTrue(checked);
        Py_XDECREF(checked);
    }
    Py_DECREF(error);
    if (go <= 0)
        return go;
    PyObject *app = Py_NewRef(C(channel, C_APP));  /* (held: a lost connection lets its kind go) */
    PyObject *sink = PyObject_CallMethodOneArg(app, D.name[S_ON_REQUEST], head);
    Py_DECREF(app);
    if (sink == NULL)
        return -1;
    int truth = PyObject_IsTrue(sink);
    if (truth >= 0)
        set_c(channel, C_SINK, truth ? sink : D.null_sink);
    Py_DECREF(sink);
    return truth < 0 ? -1 : 0;
}

/* What follows the events in _handle_events: the end's timer stop, a task's first step, the next
 * pipelined request's events. (A bodyless request's start never sets ``_body_pending``, so the end
 * has no body to end, and there is none to time.) */
static PyObject *
after_events(PyObject *channel)
{
    if (PyObject_SetAttr(C(channel, C_TIMER), D.name[S_PHASE], Py_None) < 0)
        return NULL;
    PyObject *task = C(channel, C_FIRST_STEP);
    if (task != Py_None) {
        Py_INCREF(task);
        set_c(channel, C_FIRST_STEP, Py_None);
        PyObject *args[] = {C(channel, C_LOOP), task};
        PyObject *stepped = PyObject_Vectorcall(D.step_now, args, 2, NULL);
        Py_DECREF(task);
        if (stepped == NULL)
            return NULL;
        Py_DECREF(stepped);
    }
    int advance = PyObject_IsTrue(C(channel, C_ADVANCE_PENDING));
    if (advance <= 0)
        return advance < 0 ? NULL : Py_NewRef(Py_None);
    set_c(channel, C_ADVANCE_PENDING, Py_False);
    PyObject *events = PyObject_CallMethodNoArgs(channel, D.name[S_NEXT_EVENTS]);
    if (events == NULL)
        return NULL;
    int more = PyObject_IsTrue(events);
    PyObject *handled = more > 0 ? PyObject_CallMethodOneArg(channel, D.name[S_HANDLE_EVENTS], events)
                                 : (more < 0 ? NULL : Py_NewRef(Py_None));
    Py_DECREF(events);
    return handled;
}

const char handle_events_doc[] =
    "handle_events($module, channel, events, /)\n"
    "--\n"
    "\n"
    "channel._handle_events(events), compiled for the events of one whole request without a body\n"
    "(see server.py).";

PyObject *
handle_events(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!arguments(nargs, 2, "handle_events(channel, events)"))
        return NULL;
    PyObject *channel = args[0], *events = args[1];
    int ok = taken(channel, events);
    if (ok < 0)
        return NULL;
    if (!ok)
        return PyObject_CallMethodOneArg(channel, D.name[S_HANDLE_EVENTS], events);
    Py_INCREF(channel);
    Py_INCREF(events);  /* (its head, while it is handled) */
    set_c(channel, C_DISPATCHING, Py_True);
    PyObject *done = start_request(channel, PyList_GET_ITEM(events, 0)) < 0 ? NULL : after_events(channel);
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);  /* (the finally clause: kept across the store) */
    set_c(channel, C_DISPATCHING, Py_False);
    PyErr_Restore(type, value, traceback);
    Py_DECREF(events);
    Py_DECREF(channel);
    return done;
}

const char set_dispatch_parts_doc[] =
    "set_dispatch_parts($module, channel_type, head_type, end_type, null_sink, step_now, /)\n"
    "--\n"
    "\n"
    "Register what handle_events() reads and calls: server.ServerHttpProtocol (its slots, and the\n"
    "methods it stands for), events.RequestHead, events.EndOfMessage, NULL_SINK and eager.step_now.";

PyObject *
set_dispatch_parts(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "set_dispatch_parts(channel_type, head_type, end_type, null_sink, step_now)");
        return NULL;
    }
    Py_ssize_t slot[N_C];
    if (offsets_of(args[0], SLOTS, N_C, slot) < 0 || interned(NAMES, N_S, D.name) < 0)
        return NULL;
    if (set_verdicts_base(&D.own, args[0]) < 0)
        return NULL;
    memcpy(D.slot, slot, sizeof(slot));
    Py_XSETREF(D.null_sink, Py_NewRef(args[3]));
    Py_XSETREF(D.step_now, Py_NewRef(args[4]));
    Py_XSETREF(D.end_type, (PyTypeObject *)Py_NewRef(args[2]));
    Py_XSETREF(D.head_type, (PyTypeObject *)Py_NewRef(args[1]));
    Py_RETURN_NONE;
}
