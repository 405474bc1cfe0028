/* answer_whole(): ``channel.send_response(head, data, body, True, size)`` of a whole answer,
 * compiled. The way back of nearly every request: send_response's whole branch, write_answer's
 * common case, response_finished, then, on a connection kept alive, _next_events with nothing
 * buffered (the parser's next_request, the keep-alive timer's start), or, on one the answer
 * closes, its close. Those methods are its reference: it does what they do, in their order,
 * for the common case, and calls them for anything else (a paused connection, a pipelined
 * request, a first keep-alive wait, a subclass that replaces one of them). See server.py. */
#include <Python.h>
#include <structmember.h>

#include "_answer.h"

static const char *const CHANNEL_SLOTS[] = {
    "transport", "write_closed", "pass_end", "_corked", "writing_paused", "_recording", "_parser",
    "keep_alive_allowed", "_owner", "_dispatching", "_read_paused_by", "_peer_eof", "_timer", "config",
    "_response", "framing", "_response_started", "_continue_pending", "_head", "exchange", "_sink",
    "log_environ", "idle_until", "request_forwarded", "_advance_when_drained", "_advance_pending",
    "_corked_size", "_uncork_due",
};
enum channel_slot {
    CH_TRANSPORT, CH_WRITE_CLOSED, CH_PASS_END, CH_CORKED, CH_WRITING_PAUSED, CH_RECORDING, CH_PARSER,
    CH_KEEP_ALIVE_ALLOWED, CH_OWNER, CH_DISPATCHING, CH_READ_PAUSED_BY, CH_PEER_EOF, CH_TIMER, CH_CONFIG,
    CH_RESPONSE, CH_FRAMING, CH_RESPONSE_STARTED, CH_CONTINUE_PENDING, CH_HEAD, CH_EXCHANGE, CH_SINK,
    CH_LOG_ENVIRON, CH_IDLE_UNTIL, CH_REQUEST_FORWARDED, CH_ADVANCE_WHEN_DRAINED, CH_ADVANCE_PENDING,
    CH_CORKED_SIZE, CH_UNCORK_DUE, N_CH
};
static const char *const PARSER_SLOTS[] = {"state", "buffer", "_scan_from", "_body_size"};
enum parser_slot { PA_STATE, PA_BUFFER, PA_SCAN_FROM, PA_BODY_SIZE, N_PA };
static const char *const PASS_SLOTS[] = {"expected", "answered", "held"};
enum pass_slot { PE_EXPECTED, PE_ANSWERED, PE_HELD, N_PE };
static const char *const TIMER_SLOTS[] = {"phase", "_seconds", "deadline", "_handle", "_handle_when", "_loop"};
enum timer_slot { TI_PHASE, TI_SECONDS, TI_DEADLINE, TI_HANDLE, TI_HANDLE_WHEN, TI_LOOP, N_TI };
static const char *const HEAD_SLOTS[] = {"keep_alive", "whole_length", "sized"};
enum head_slot { HE_KEEP_ALIVE, HE_WHOLE_LENGTH, HE_SIZED, N_HE };
/* The channel type's methods it stands for: a subclass that replaces one of them is declined. */
static const char *const OWN_METHODS[] = {"send_response", "write_answer", "response_finished", "_next_events",
                                          "_advance", "_write_last", "close", "write_corked", "_uncork"};
#define N_OWN ((int)(sizeof(OWN_METHODS) / sizeof(OWN_METHODS[0])))
static const char *const EXCHANGE_SLOTS[] = {"protocol", "_response", "_environ"};
enum exchange_slot { EX_PROTOCOL, EX_RESPONSE, EX_ENVIRON, N_EX };

static PyObject *own_methods[N_OWN];
static struct {
    PyTypeObject *channel_type, *parser_type, *pass_end_type, *timer_type, *head_type, *exchange_type;
    Py_ssize_t exchange[N_EX];
    Py_ssize_t channel[N_CH], parser[N_PA], timer[N_TI], head[N_HE], pass[N_PE];
    struct verdicts own; /* on the channel types: whether each keeps OWN_METHODS */
    PyObject *null_sink, *state_head, *zero, *keepalive;
    long state_done;
    Py_ssize_t separate_body;
    PyObject *str_write, *str_send_response, *str_response_finished, *str_record, *str_request_done,
        *str_let_app_go, *str_advance, *str_time, *str_cancel, *str_arm,
        *str_head_on_loop, *str_hold, *str_write_all, *str_write_held, *str_uncork, *str_uncork_due, *str_corked,
        *str_writelines, *str_loop, *str_call_exception_handler, *str_message, *str_exception, *str_protocol,
        *held_failed;
} A = {.own = {.count = N_OWN, .names = OWN_METHODS, .methods = own_methods}};

static int intern(PyObject **slot, const char *text);

#define CH(obj, index) SLOT(obj, A.channel[index])

int
judged(struct verdicts *verdicts, PyTypeObject *type)
{
    int free = -1;
    for (int i = 0; i < N_SEEN; i++) {
        if (verdicts->seen[i].type == type) {
            if (PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG) &&
                type->tp_version_tag == verdicts->seen[i].version)
                return verdicts->seen[i].ok;
            free = i;
            break;
        }
        if (verdicts->seen[i].type == NULL && free < 0)
            free = i;
    }
    int ok = verdicts->base != NULL && PyType_IsSubtype(type, verdicts->base);
    for (int k = 0; ok && k < verdicts->count; k++) {
        PyObject *method = PyObject_GetAttrString((PyObject *)type, verdicts->names[k]);
        if (method == NULL)
            return -1;
        ok = method == verdicts->methods[k];
        Py_DECREF(method);
    }
    if (free >= 0 && PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG)) {  /* (the lookups assign one) */
        if (verdicts->seen[free].type != type)
            verdicts->seen[free].type = (PyTypeObject *)Py_NewRef(type);
        verdicts->seen[free].version = type->tp_version_tag;
        verdicts->seen[free].ok = ok;
    }
    return ok;
}

int
set_verdicts_base(struct verdicts *verdicts, PyObject *base)
{
    for (int k = 0; k < verdicts->count; k++) {
        PyObject *method = PyObject_GetAttrString(base, verdicts->names[k]);
        if (method == NULL)
            return -1;
        Py_XSETREF(verdicts->methods[k], method);
    }
    for (int i = 0; i < N_SEEN; i++)
        Py_CLEAR(verdicts->seen[i].type);
    Py_XSETREF(verdicts->base, (PyTypeObject *)Py_NewRef(base));
    return 0;
}

static int
channel_type_ok(PyTypeObject *type)
{
    return judged(&A.own, type);
}

/* Whether the C takes ``channel``'s answers: of the registered class, or of a subclass that keeps
 * its methods; -1 on an error. */
static int
taken(PyObject *channel)
{
    return A.channel_type != NULL ? channel_type_ok(Py_TYPE(channel)) : 0;
}

/* The truth of a slot that holds a bool; -1 with an error set if it is unset or not one. */
static int
flag(PyObject *obj, enum channel_slot index)
{
    PyObject *value = CH(obj, index);
    if (value == Py_True)
        return 1;
    if (value == Py_False)
        return 0;
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "%s", CHANNEL_SLOTS[index]);
        return -1;
    }
    return PyObject_IsTrue(value);
}

int
arguments(Py_ssize_t nargs, Py_ssize_t expected, const char *usage)
{
    if (nargs == expected)
        return 1;
    PyErr_SetString(PyExc_TypeError, usage);
    return 0;
}

static PyObject *
call_false(PyObject *obj, PyObject *name, PyObject *arg)
{
    Py_INCREF(obj);
    PyObject *result = arg == NULL ? PyObject_CallMethodNoArgs(obj, name) : PyObject_CallMethodOneArg(obj, name, arg);
    Py_DECREF(obj);
    if (result == NULL)
        return NULL;
    Py_DECREF(result);
    Py_RETURN_FALSE;
}

static int
parser_done(PyObject *parser)
{
    PyObject *state = SLOT(parser, A.parser[PA_STATE]);
    return state != NULL && PyLong_CheckExact(state) && PyLong_AsLong(state) == A.state_done;
}

/* send_response's whole branch and write_answer's common case apply: the body is all of it and
 * goes in one write with its head (or is held with the pass's answers, see held_for_pass), and
 * nothing is held, paused or shut on the connection. */
static int
written_at_once(PyObject *channel, PyObject *head, Py_ssize_t n_data, Py_ssize_t n_body)
{
    PyObject *transport = CH(channel, CH_TRANSPORT), *pass_end = CH(channel, CH_PASS_END),
             *recording = CH(channel, CH_RECORDING);
    if (transport == NULL || transport == Py_None || CH(channel, CH_WRITE_CLOSED) != Py_False ||
        CH(channel, CH_CORKED) != Py_None || CH(channel, CH_WRITING_PAUSED) != Py_False || pass_end == NULL ||
        Py_TYPE(pass_end) != A.pass_end_type || !PyLong_CheckExact(SLOT(pass_end, A.pass[PE_EXPECTED])) ||
        !PyLong_CheckExact(SLOT(pass_end, A.pass[PE_ANSWERED])) || !PyList_CheckExact(SLOT(pass_end, A.pass[PE_HELD])) ||
        (recording != Py_True && recording != Py_False))
        return 0;
    PyObject *keep_alive = SLOT(head, A.head[HE_KEEP_ALIVE]);
    if ((keep_alive != Py_True && keep_alive != Py_False) || n_data + n_body >= A.separate_body)
        return 0;
    PyObject *whole = SLOT(head, A.head[HE_WHOLE_LENGTH]);
    if (whole != NULL && PyLong_CheckExact(whole)) {
        Py_ssize_t length = PyLong_AsSsize_t(whole);
        if (length == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        if (length == n_body)
            return 1;
    }
    return SLOT(head, A.head[HE_SIZED]) == Py_True;
}

/* _next_events with nothing buffered applies: the next request is waited for with the
 * connection's own timer. */
static int
waits_for_next(PyObject *channel)
{
    PyObject *paused = CH(channel, CH_READ_PAUSED_BY), *parser = CH(channel, CH_PARSER),
             *timer = CH(channel, CH_TIMER), *buffer;
    if (paused == NULL || !PyAnySet_Check(paused) || PySet_GET_SIZE(paused) != 0 || parser == NULL ||
        Py_TYPE(parser) != A.parser_type || !parser_done(parser) || CH(channel, CH_PEER_EOF) != Py_False ||
        timer == NULL || Py_TYPE(timer) != A.timer_type || CH(channel, CH_CONFIG) == NULL)
        return 0;
    buffer = SLOT(parser, A.parser[PA_BUFFER]);
    if (buffer == NULL || !PyByteArray_CheckExact(buffer) || PyByteArray_GET_SIZE(buffer) != 0)
        return 0;
    for (int k = 0; k < N_TI; k++) {
        if (SLOT(timer, A.timer[k]) == NULL)
            return 0;
    }
    return 1;
}

/* timer.start("keepalive", seconds). */
static int
start_timer(PyObject *timer, PyObject *seconds)
{
    int none = PyObject_RichCompareBool(seconds, A.zero, Py_LE);
    if (none != 0) {
        if (none < 0)
            return -1;
        set_slot(timer, A.timer[TI_PHASE], Py_None);
        return 0;
    }
    set_slot(timer, A.timer[TI_PHASE], A.keepalive);
    set_slot(timer, A.timer[TI_SECONDS], seconds);
    PyObject *loop = Py_NewRef(SLOT(timer, A.timer[TI_LOOP]));
    PyObject *now = PyObject_CallMethodNoArgs(loop, A.str_time);
    Py_DECREF(loop);
    if (now == NULL)
        return -1;
    PyObject *deadline = PyNumber_Add(now, seconds);
    Py_DECREF(now);
    if (deadline == NULL)
        return -1;
    set_slot(timer, A.timer[TI_DEADLINE], deadline);
    PyObject *handle = SLOT(timer, A.timer[TI_HANDLE]);
    int early = 0;
    if (handle != NULL && handle != Py_None) {
        PyObject *when = SLOT(timer, A.timer[TI_HANDLE_WHEN]);
        early = when != NULL ? PyObject_RichCompareBool(when, deadline, Py_LE) : 0;
        if (early == 0) {  /* (it fires late: cancelled, and armed again) */
            PyObject *done = call_false(handle, A.str_cancel, NULL);
            early = done == NULL ? -1 : 0;
            Py_XDECREF(done);
        }
    }
    if (early == 0) {
        PyObject *done = call_false(timer, A.str_arm, deadline);
        early = done == NULL ? -1 : 1;
        Py_XDECREF(done);
    }
    Py_DECREF(deadline);
    return early < 0 ? -1 : 0;
}

/* What response_finished forgets of the response first. */
static void
forget_response(PyObject *channel)
{
    set_slot(channel, A.channel[CH_HEAD], Py_None);
    set_slot(channel, A.channel[CH_EXCHANGE], Py_None);
    set_slot(channel, A.channel[CH_SINK], A.null_sink);
    set_slot(channel, A.channel[CH_RESPONSE_STARTED], Py_False);
    set_slot(channel, A.channel[CH_CONTINUE_PENDING], Py_False);
    set_slot(channel, A.channel[CH_RESPONSE], Py_None);
    set_slot(channel, A.channel[CH_LOG_ENVIRON], Py_None);
}

/* The owner's request_done(), if the connection has an owner; NULL on an error. */
static PyObject *
tell_owner(PyObject *channel)
{
    PyObject *owner = CH(channel, CH_OWNER);
    if (owner == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_owner");
        return NULL;
    }
    if (owner == Py_None)
        Py_RETURN_FALSE;
    return call_false(owner, A.str_request_done, NULL);
}

/* response_finished(False): the connection closes (the close comes before the owner is told). */
static PyObject *
finish_closing(PyObject *channel)
{
    forget_response(channel);
    PyObject *transport = CH(channel, CH_TRANSPORT), *done;
    if (transport == NULL) {
        PyErr_SetString(PyExc_AttributeError, "transport");
        return NULL;
    }
    if (transport != Py_None) {
        if ((done = close_channel(channel)) == NULL)
            return NULL;
        Py_DECREF(done);
    }
    if ((done = tell_owner(channel)) == NULL)
        return NULL;
    Py_DECREF(done);
    transport = CH(channel, CH_TRANSPORT);
    if (transport == NULL || transport == Py_None)
        return call_false(channel, A.str_let_app_go, NULL);
    Py_RETURN_FALSE;
}

/* response_finished(True), then what it goes on with. */
static PyObject *
finish_kept(PyObject *channel)
{
    forget_response(channel);
    PyObject *transport = CH(channel, CH_TRANSPORT), *parser = CH(channel, CH_PARSER), *owner = CH(channel, CH_OWNER);
    if (transport == NULL || transport == Py_None || parser == NULL || Py_TYPE(parser) != A.parser_type ||
        !parser_done(parser) || CH(channel, CH_KEEP_ALIVE_ALLOWED) != Py_True || owner == NULL)
        return call_false(channel, A.str_response_finished, Py_True);  /* (what it did so far, again: no change) */
    PyObject *done = tell_owner(channel);
    if (done == NULL)
        return NULL;
    Py_DECREF(done);
    transport = CH(channel, CH_TRANSPORT);
    if (transport == NULL || transport == Py_None)
        return call_false(channel, A.str_let_app_go, NULL);
    int paused = flag(channel, CH_WRITING_PAUSED);
    if (paused != 0) {
        if (paused < 0)
            return NULL;
        set_slot(channel, A.channel[CH_ADVANCE_WHEN_DRAINED], Py_True);
        Py_RETURN_FALSE;
    }
    int dispatching = flag(channel, CH_DISPATCHING);
    if (dispatching != 0) {
        if (dispatching < 0)
            return NULL;
        set_slot(channel, A.channel[CH_ADVANCE_PENDING], Py_True);
        Py_RETURN_FALSE;
    }
    if (!waits_for_next(channel))
        return call_false(channel, A.str_advance, NULL);
    PyObject *seconds = PyObject_GetAttr(CH(channel, CH_CONFIG), A.keepalive);
    if (seconds == NULL)
        return NULL;
    parser = CH(channel, CH_PARSER);  /* (next_request, with nothing buffered) */
    set_slot(parser, A.parser[PA_STATE], A.state_head);
    set_slot(parser, A.parser[PA_SCAN_FROM], A.zero);
    set_slot(parser, A.parser[PA_BODY_SIZE], A.zero);
    PyObject *timer = Py_NewRef(CH(channel, CH_TIMER));
    int failed = start_timer(timer, seconds);
    Py_DECREF(seconds);
    if (!failed) {
        set_slot(channel, A.channel[CH_IDLE_UNTIL], SLOT(timer, A.timer[TI_DEADLINE]));
        set_slot(channel, A.channel[CH_REQUEST_FORWARDED], Py_None);
    }
    Py_DECREF(timer);
    if (failed)
        return NULL;
    Py_RETURN_FALSE;
}

/* write_answer's branch for the answers a pass expects (cork.py: pass_end.expected, the tasks
 * started as it read their requests), for a connection holding nothing: the answer is held until
 * the last expected one (write_corked's first piece, the connection in the pass's held); the last
 * writes every one held (PassEnd.write_all) before its own. 1: ``joined`` is held; 0: it is to be
 * written now; -1 on an error. */
static int
held_for_pass(PyObject *channel, PyObject *joined)
{
    PyObject *pass_end = CH(channel, CH_PASS_END), *held = SLOT(pass_end, A.pass[PE_HELD]);
    Py_ssize_t expected = PyLong_AsSsize_t(SLOT(pass_end, A.pass[PE_EXPECTED])), answered;
    if (expected == 0)
        return 0;
    if (expected == -1 || (answered = PyLong_AsSsize_t(SLOT(pass_end, A.pass[PE_ANSWERED]))) == -1)
        return -1;
    PyObject *count = PyLong_FromSsize_t(answered + 1);
    if (count == NULL)
        return -1;
    set_slot(pass_end, A.pass[PE_ANSWERED], count);
    Py_DECREF(count);
    if (answered + 1 >= expected) {
        if (PyList_GET_SIZE(held) == 0) {
            set_slot(pass_end, A.pass[PE_EXPECTED], A.zero);
            set_slot(pass_end, A.pass[PE_ANSWERED], A.zero);
            return 0;
        }
        PyObject *done = call_false(pass_end, A.str_write_all, NULL);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    PyObject *pieces = PyList_New(1), *size = PyLong_FromSsize_t(PyBytes_GET_SIZE(joined));
    if (pieces == NULL || size == NULL) {
        Py_XDECREF(pieces);
        Py_XDECREF(size);
        return -1;
    }
    PyList_SET_ITEM(pieces, 0, Py_NewRef(joined));
    set_slot(channel, A.channel[CH_CORKED], pieces);
    set_slot(channel, A.channel[CH_CORKED_SIZE], size);
    Py_DECREF(pieces);
    Py_DECREF(size);
    if (CH(channel, CH_UNCORK_DUE) == Py_True)  /* (in held already) */
        return 1;
    set_slot(channel, A.channel[CH_UNCORK_DUE], Py_True);
    if (PyList_GET_SIZE(held) > 0)  /* (the pass's callback is scheduled: hold() without it) */
        return PyList_Append(held, channel) < 0 ? -1 : 1;
    PyObject *done = call_false(pass_end, A.str_hold, channel);
    Py_XDECREF(done);
    return done == NULL ? -1 : 1;
}

/* What write_held does for one connection the pass held: ``_uncork_due`` reset, and what it
 * holds written (``_uncork``, inline where the connection writes at once); -1 with the error set. */
static int
uncork_held(PyObject *connection)
{
    int ok = taken(connection);
    if (ok < 0)
        return -1;
    PyObject *pieces = ok ? CH(connection, CH_CORKED) : NULL, *done;
    if (!ok || pieces == NULL || (pieces != Py_None && (CH(connection, CH_WRITING_PAUSED) != Py_False ||
                                                          !PyList_CheckExact(pieces)))) {
        if (PyObject_SetAttr(connection, A.str_uncork_due, Py_False) < 0 ||
            (pieces = PyObject_GetAttr(connection, A.str_corked)) == NULL)
            return -1;
        Py_DECREF(pieces);
        if (pieces == Py_None)
            return 0;
        done = PyObject_CallMethodNoArgs(connection, A.str_uncork);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    set_slot(connection, A.channel[CH_UNCORK_DUE], Py_False);
    if (pieces == Py_None)
        return 0;
    Py_INCREF(pieces);
    set_slot(connection, A.channel[CH_CORKED], Py_None);
    PyObject *transport = CH(connection, CH_TRANSPORT);
    int closed = transport == NULL || transport == Py_None ? 1 : flag(connection, CH_WRITE_CLOSED);
    if (closed != 0) {
        Py_DECREF(pieces);
        return closed < 0 ? -1 : 0;
    }
    Py_INCREF(transport);
    if (PyList_GET_SIZE(pieces) == 1)
        done = PyObject_CallMethodOneArg(transport, A.str_write, PyList_GET_ITEM(pieces, 0));
    else  /* (uvloop: one writev, no copy) */
        done = PyObject_CallMethodOneArg(transport, A.str_writelines, pieces);
    Py_DECREF(transport);
    Py_DECREF(pieces);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

PyObject *
caught(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL)
        PyException_SetTraceback(value, traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
}

/* The loop's exception handler told of the exception being raised for ``connection`` (one
 * transport's failure does not hold the others' bytes); -1 if that fails. */
static int
tell_loop(PyObject *connection)
{
    PyObject *value = caught();
    PyObject *context = Py_BuildValue("{O:O,O:O,O:O}", A.str_message, A.held_failed, A.str_exception, value,
                                      A.str_protocol, connection);
    PyObject *loop = context == NULL ? NULL : PyObject_GetAttr(connection, A.str_loop);
    PyObject *done = loop == NULL ? NULL : PyObject_CallMethodOneArg(loop, A.str_call_exception_handler, context);
    Py_XDECREF(loop);
    Py_XDECREF(context);
    Py_XDECREF(value);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

const char write_held_doc[] =
    "write_held($module, pass_end, /)\n"
    "--\n"
    "\n"
    "pass_end._write_held(), compiled: what every connection the pass held writes, at its end (see\n"
    "cork.py).";

PyObject *
write_held(PyObject *Py_UNUSED(module), PyObject *pass_end)
{
    if (A.pass_end_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write_held() before set_channel_type()");
        return NULL;
    }
    if (Py_TYPE(pass_end) != A.pass_end_type)
        return PyObject_CallMethodNoArgs(pass_end, A.str_write_held);
    PyObject *held = SLOT(pass_end, A.pass[PE_HELD]), *fresh = PyList_New(0);
    if (held == NULL || fresh == NULL) {
        Py_XDECREF(fresh);
        if (held == NULL)
            PyErr_SetString(PyExc_AttributeError, "held");
        return NULL;
    }
    Py_INCREF(held);
    set_slot(pass_end, A.pass[PE_HELD], fresh);
    Py_DECREF(fresh);
    PyObject *connections = PySequence_Fast(held, "held");
    Py_DECREF(held);
    if (connections == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(connections); k++) {
        PyObject *connection = Py_NewRef(PySequence_Fast_GET_ITEM(connections, k));
        int failed = uncork_held(connection) < 0;
        if (failed && (!PyErr_ExceptionMatches(PyExc_Exception) || tell_loop(connection) < 0)) {
            Py_DECREF(connection);
            Py_DECREF(connections);
            return NULL;
        }
        Py_DECREF(connection);
    }
    Py_DECREF(connections);
    Py_RETURN_NONE;
}

const char answer_whole_doc[] =
    "answer_whole($module, channel, head, data, body, size, /)\n"
    "--\n"
    "\n"
    "channel.send_response(head, data, body, True, size), compiled for a whole answer (see\n"
    "server.py).";

/* answer_whole(channel, head, data, body, size); ``ok``: the channel's type is known to be one it takes. */
static PyObject *
answer(PyObject *channel, PyObject *head, PyObject *data, PyObject *body, PyObject *size, int ok)
{
    ok = ok && Py_TYPE(head) == A.head_type && PyBytes_CheckExact(data) && PyBytes_CheckExact(body);
    if (!ok || !written_at_once(channel, head, PyBytes_GET_SIZE(data), PyBytes_GET_SIZE(body))) {
        PyObject *call[] = {channel, head, data, body, Py_True, size};
        return PyObject_VectorcallMethod(A.str_send_response, call, 6, NULL);
    }
    set_slot(channel, A.channel[CH_RESPONSE], head);
    set_slot(channel, A.channel[CH_FRAMING], Py_None);
    PyObject *joined = PyBytes_GET_SIZE(body) ? PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(data) +
                                                                                  PyBytes_GET_SIZE(body))
                                              : Py_NewRef(data);
    if (joined == NULL)
        return NULL;
    if (PyBytes_GET_SIZE(body)) {
        memcpy(PyBytes_AS_STRING(joined), PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
        memcpy(PyBytes_AS_STRING(joined) + PyBytes_GET_SIZE(data), PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body));
    }
    set_slot(channel, A.channel[CH_RESPONSE_STARTED], Py_True);
    set_slot(channel, A.channel[CH_CONTINUE_PENDING], Py_False);
    int kept = SLOT(head, A.head[HE_KEEP_ALIVE]) == Py_True;
    int held = held_for_pass(channel, joined);
    PyObject *written;
    if (held) {
        written = held < 0 ? NULL : Py_NewRef(Py_None);
    }
    else if (kept) {
        written = call_false(CH(channel, CH_TRANSPORT), A.str_write, joined);
    }
    else {  /* (the bytes the close ends the connection with: with its FIN, see cork.py) */
        PyObject *transport = Py_NewRef(CH(channel, CH_TRANSPORT));
        written = write_last(channel, transport, joined);
        Py_DECREF(transport);
    }
    Py_DECREF(joined);
    if (written == NULL)
        return NULL;
    Py_DECREF(written);
    int recording = flag(channel, CH_RECORDING);
    if (recording != 0) {
        if (recording < 0)
            return NULL;
        PyObject *sent = PyLong_FromSsize_t(PyBytes_GET_SIZE(body));
        PyObject *done = sent == NULL ? NULL : call_false(channel, A.str_record, sent);
        Py_XDECREF(sent);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
    }
    return kept ? finish_kept(channel) : finish_closing(channel);
}

const char finish_response_doc[] =
    "response_finished($module, channel, keep_alive, /)\n"
    "--\n"
    "\n"
    "channel.response_finished(keep_alive), compiled: answer_whole's end, for the other ends of a\n"
    "response (see response.py).";

PyObject *
finish_response(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!arguments(nargs, 2, "response_finished(channel, keep_alive)"))
        return NULL;
    PyObject *channel = args[0], *keep_alive = args[1], *done;
    int ok = taken(channel);
    if (ok < 0)
        return NULL;
    if (ok && keep_alive == Py_True)
        done = finish_kept(channel);
    else if (ok && keep_alive == Py_False)
        done = finish_closing(channel);
    else if (intern(&A.str_response_finished, "response_finished"))
        return NULL;
    else
        done = call_false(channel, A.str_response_finished, keep_alive);
    if (done == NULL)
        return NULL;
    Py_DECREF(done);
    Py_RETURN_NONE;
}

PyObject *
answer_whole(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!arguments(nargs, 5, "answer_whole(channel, head, data, body, size)"))
        return NULL;
    int ok = taken(args[0]);
    return ok < 0 ? NULL : answer(args[0], args[1], args[2], args[3], args[4], ok);
}

const char answer_exchange_doc[] =
    "answer_exchange($module, exchange, body, size, /)\n"
    "--\n"
    "\n"
    "exchange._head_on_loop(body, True, size), compiled: a WSGI exchange's whole answer, by\n"
    "answer_whole (see wsgi/exchange.py).";

PyObject *
answer_exchange(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!arguments(nargs, 3, "answer_exchange(exchange, body, size)"))
        return NULL;
    PyObject *exchange = args[0], *channel, *response, *environ, *transport;
    int ok = A.exchange_type != NULL && Py_TYPE(exchange) == A.exchange_type;
    if (ok) {
        channel = SLOT(exchange, A.exchange[EX_PROTOCOL]);
        response = SLOT(exchange, A.exchange[EX_RESPONSE]);
        environ = SLOT(exchange, A.exchange[EX_ENVIRON]);
        ok = channel != NULL && response != NULL && environ != NULL && PyTuple_CheckExact(response) &&
             PyTuple_GET_SIZE(response) == 2 && A.channel_type != NULL;
        if (ok && (ok = channel_type_ok(Py_TYPE(channel))) < 0)
            return NULL;
    }
    if (!ok) {
        PyObject *call[] = {exchange, args[1], Py_True, args[2]};
        return PyObject_VectorcallMethod(A.str_head_on_loop, call, 4, NULL);
    }
    transport = CH(channel, CH_TRANSPORT);
    if (transport == NULL || transport == Py_None) {
        if (transport == NULL)
            PyErr_SetString(PyExc_AttributeError, "transport");
        return transport == NULL ? NULL : Py_NewRef(Py_None);
    }
    Py_INCREF(channel);
    Py_INCREF(response);
    set_slot(exchange, A.exchange[EX_RESPONSE], PyTuple_GET_ITEM(response, 0));
    set_slot(channel, A.channel[CH_LOG_ENVIRON], environ);
    PyObject *done = answer(channel, PyTuple_GET_ITEM(response, 0), PyTuple_GET_ITEM(response, 1), args[1], args[2], 1);
    Py_DECREF(response);
    Py_DECREF(channel);
    if (done == NULL)
        return NULL;
    Py_DECREF(done);
    Py_RETURN_NONE;
}

const char set_exchange_type_doc[] =
    "set_exchange_type($module, exchange_type, /)\n"
    "--\n"
    "\n"
    "Register what answer_exchange() reads and writes: wsgi.exchange.WSGIExchange (its slots\n"
    "protocol, _response and _environ).";

PyObject *
set_exchange_type(PyObject *Py_UNUSED(module), PyObject *exchange_type)
{
    Py_ssize_t offsets[N_EX];
    if (!PyType_Check(exchange_type)) {
        PyErr_SetString(PyExc_TypeError, "set_exchange_type(exchange_type)");
        return NULL;
    }
    if (offsets_of(exchange_type, EXCHANGE_SLOTS, N_EX, offsets) < 0 || intern(&A.str_head_on_loop, "_head_on_loop"))
        return NULL;
    memcpy(A.exchange, offsets, sizeof(offsets));
    Py_XSETREF(A.exchange_type, (PyTypeObject *)Py_NewRef(exchange_type));
    Py_RETURN_NONE;
}

int
offsets_of(PyObject *type, const char *const *names, int count, Py_ssize_t *offsets)
{
    for (int k = 0; k < count; k++) {
        if ((offsets[k] = object_slot_offset(type, names[k])) < 0)
            return -1;
    }
    return 0;
}

static int
intern(PyObject **slot, const char *text)
{
    if (*slot == NULL)
        *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

int
attribute_true(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL)
        return -1;
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

int
interned(const char *const *texts, int count, PyObject **strings)
{
    for (int k = 0; k < count; k++) {
        if (intern(&strings[k], texts[k]) < 0)
            return -1;
    }
    return 0;
}

const char set_channel_type_doc[] =
    "set_channel_type($module, channel_type, parser_type, pass_end_type, timer_type, head_type, null_sink,\n"
    "                 states, separate_body, /)\n"
    "--\n"
    "\n"
    "Register what answer_whole() reads and writes: server.ServerHttpProtocol (its slots, and the\n"
    "methods it stands for), parser.RequestParser, cork.PassEnd, timers.ConnectionTimer, heads.Head,\n"
    "NULL_SINK, the parser's states (HEAD, DONE) and response.SEPARATE_BODY.";

PyObject *
set_channel_type(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2]) ||
        !PyType_Check(args[3]) || !PyType_Check(args[4]) || !PyTuple_CheckExact(args[6]) ||
        PyTuple_GET_SIZE(args[6]) != 2) {
        PyErr_SetString(PyExc_TypeError, "set_channel_type(channel_type, parser_type, pass_end_type, timer_type, "
                                         "head_type, null_sink, (HEAD, DONE), separate_body)");
        return NULL;
    }
    Py_ssize_t channel[N_CH], parser[N_PA], pass[N_PE], timer[N_TI], head[N_HE];
    long done = PyLong_AsLong(PyTuple_GET_ITEM(args[6], 1));
    Py_ssize_t separate = PyLong_AsSsize_t(args[7]);
    if ((done == -1 || separate == -1) && PyErr_Occurred())
        return NULL;
    if (offsets_of(args[0], CHANNEL_SLOTS, N_CH, channel) < 0 || offsets_of(args[1], PARSER_SLOTS, N_PA, parser) < 0 ||
        offsets_of(args[2], PASS_SLOTS, N_PE, pass) < 0 || offsets_of(args[3], TIMER_SLOTS, N_TI, timer) < 0 ||
        offsets_of(args[4], HEAD_SLOTS, N_HE, head) < 0)
        return NULL;
    if (intern(&A.str_write, "write") || intern(&A.str_send_response, "send_response") ||
        intern(&A.str_response_finished, "response_finished") || intern(&A.str_record, "_record") ||
        intern(&A.str_request_done, "request_done") || intern(&A.str_let_app_go, "_let_app_go") ||
        intern(&A.str_advance, "_advance") || intern(&A.str_time, "time") || intern(&A.str_cancel, "cancel") ||
        intern(&A.str_arm, "_arm") || intern(&A.keepalive, "keepalive") ||
        intern(&A.str_hold, "hold") || intern(&A.str_write_all, "write_all") ||
        intern(&A.str_write_held, "_write_held") || intern(&A.str_uncork, "_uncork") ||
        intern(&A.str_uncork_due, "_uncork_due") || intern(&A.str_corked, "_corked") ||
        intern(&A.str_writelines, "writelines") || intern(&A.str_loop, "loop") ||
        intern(&A.str_call_exception_handler, "call_exception_handler") || intern(&A.str_message, "message") ||
        intern(&A.str_exception, "exception") || intern(&A.str_protocol, "protocol") ||
        intern(&A.held_failed, "Writing at the end of a loop pass failed"))
        return NULL;
    if (set_verdicts_base(&A.own, args[0]) < 0)
        return NULL;
    memcpy(A.channel, channel, sizeof(channel));
    memcpy(A.parser, parser, sizeof(parser));
    memcpy(A.timer, timer, sizeof(timer));
    memcpy(A.head, head, sizeof(head));
    memcpy(A.pass, pass, sizeof(pass));
    A.state_done = done;
    A.separate_body = separate;
    if (A.zero == NULL && (A.zero = PyLong_FromLong(0)) == NULL)
        return NULL;
    Py_XSETREF(A.state_head, Py_NewRef(PyTuple_GET_ITEM(args[6], 0)));
    Py_XSETREF(A.null_sink, Py_NewRef(args[5]));
    Py_XSETREF(A.parser_type, (PyTypeObject *)Py_NewRef(args[1]));
    Py_XSETREF(A.pass_end_type, (PyTypeObject *)Py_NewRef(args[2]));
    Py_XSETREF(A.timer_type, (PyTypeObject *)Py_NewRef(args[3]));
    Py_XSETREF(A.head_type, (PyTypeObject *)Py_NewRef(args[4]));
    Py_XSETREF(A.channel_type, (PyTypeObject *)Py_NewRef(args[0]));
    Py_RETURN_NONE;
}
