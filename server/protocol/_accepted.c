/* A connection served on its accepted socket (workers/accepted.py), compiled where every
 * connection goes: its set-up (serve_accepted: listeners.serve_accepted_py, with
 * AcceptedTransport.copy_for, serve and settle inline), and the end of one its whole answer closes:
 * cork.py's ``_write_last`` (the last bytes, with the FIN) and closing.py's
 * ``ConnectionEnding.close`` for their common case, ``AcceptedTransport.close`` inline, and on the
 * loop's next turn the loss (``_lost``, ``connection_lost``'s common case). answer_whole calls
 * the end's for the connections it takes (a class that replaces ``close`` or ``_write_last`` is
 * not taken). Those functions and methods are their reference: these do what they do, in their
 * order, and call them for anything else (bytes held, a lease kept, a request not read to its
 * end or failed, a transport of a class that replaces one of them). A connection per request,
 * behind a proxy without upstream keep-alive, runs all of it once a request. */
#include <Python.h>
#include <unistd.h>

#include "_answer.h"

static const char *const CHANNEL_SLOTS[] = {"transport", "socket_fd", "_timer", "_kept_lease", "_corked",
                                            "_input_failed", "_parser", "_linger_left", "config", "_body_rate",
                                            "_response_rate", "_drain_waiter", "_upgraded", "_head", "_owner",
                                            "exchange", "app"};
enum channel_slot { CH_TRANSPORT, CH_SOCKET_FD, CH_TIMER, CH_KEPT_LEASE, CH_CORKED, CH_INPUT_FAILED, CH_PARSER,
                    CH_LINGER_LEFT, CH_CONFIG, CH_BODY_RATE, CH_RESPONSE_RATE, CH_DRAIN_WAITER, CH_UPGRADED, CH_HEAD,
                    CH_OWNER, CH_EXCHANGE, CH_APP, N_CH };
static const char *const TRANSPORT_SLOTS[] = {"_loop_transport", "_closing", "_pending", "_pending_size",
                                              "_watching", "_fd", "_sock", "_loop", "_protocol", "_local", "_peer",
                                              "_read_once", "_paused", "_first_bytes"};
enum transport_slot { TR_LOOP_TRANSPORT, TR_CLOSING, TR_PENDING, TR_PENDING_SIZE, TR_WATCHING, TR_FD, TR_SOCK,
                      TR_LOOP, TR_PROTOCOL, TR_LOCAL, TR_PEER, TR_READ_ONCE, TR_PAUSED, TR_FIRST_BYTES, N_TR };
/* AcceptedTransport's methods the C stands for: a subclass that replaces one has them called. */
static const char *const OWN_METHODS[] = {"close", "_close_socket", "get_write_buffer_size", "is_closing", "_lost",
                                          "copy_for", "serve", "settle"};
#define N_OWN ((int)(sizeof(OWN_METHODS) / sizeof(OWN_METHODS[0])))
/* The channel type's: a subclass that replaces it has it called. */
static const char *const CHANNEL_METHODS[] = {"connection_lost"};
static const char *const NAMES[] = {"close", "_write_last", "cancel", "write", "get_write_buffer_size",
                                    "is_closing", "_close_socket", "_lost", "call_soon", "connection_lost",
                                    "first_waits", "waiting", "connection_closed", "pop", "early_data", "peername",
                                    "sockname", "socket_fd", "connection_made", "needs_reading", "hand_to_loop",
                                    "watch", "_read_first", "abort", "call_exception_handler", "message",
                                    "exception", "protocol", "transport", "Error serving a new connection", "copy_for",
                                    "serve", "_local"};
enum name { N_CLOSE, N_WRITE_LAST, N_CANCEL, N_WRITE, N_GET_WRITE_BUFFER_SIZE, N_IS_CLOSING, N_CLOSE_SOCKET, N_LOST,
            N_CALL_SOON, N_CONNECTION_LOST, N_FIRST_WAITS, N_WAITING, N_CONNECTION_CLOSED, N_POP,
            N_EARLY_DATA, N_PEERNAME, N_SOCKNAME, N_SOCKET_FD, N_CONNECTION_MADE, N_NEEDS_READING, N_HAND_TO_LOOP,
            N_WATCH, N_READ_FIRST, N_ABORT, N_CALL_EXCEPTION_HANDLER, N_MESSAGE, N_EXCEPTION, N_PROTOCOL, N_TRANSPORT,
            N_SERVING_FAILED, N_COPY_FOR, N_SERVE, N_LOCAL, N_N };

static PyObject *own_methods[N_OWN], *channel_methods[1];
static struct {
    int ready; /* set_close_parts was called */
    PyTypeObject *parser_type;
    Py_ssize_t channel[N_CH], transport[N_TR], parser_state;
    long state_done;
    PyObject *no_timer, *gone_timer, *not_watched, *no_app, *closed_fd, *lost, *copy_of, *name[N_N];
    struct verdicts accepted; /* on transport types: AcceptedTransport's, or one keeping its methods */
    struct verdicts channels; /* on connection types: ServerHttpProtocol's, or one keeping connection_lost */
} C = {.accepted = {.count = N_OWN, .names = OWN_METHODS, .methods = own_methods},
       .channels = {.count = 1, .names = CHANNEL_METHODS, .methods = channel_methods}};

#define CH(obj, index) SLOT(obj, C.channel[index])
#define TR(obj, index) SLOT(obj, C.transport[index])

/* Whether ``transport`` is one the C reads (an AcceptedTransport with no loop's transport yet). */
static int
accepted_alone(PyObject *transport)
{
    if (C.accepted.base == NULL)
        return 0;
    int ok = judged(&C.accepted, Py_TYPE(transport));
    if (ok <= 0)
        return ok;
    PyObject *loop_transport = TR(transport, TR_LOOP_TRANSPORT);
    return loop_transport == Py_None;
}

static PyObject *
call(PyObject *obj, enum name name, PyObject *arg)
{
    PyObject *args[] = {obj, arg};
    return PyObject_VectorcallMethod(C.name[name], args, arg == NULL ? 1 : 2, NULL);
}

/* ``not transport.get_write_buffer_size() and not transport.is_closing()``: 1, 0, or -1. */
static int
idle(PyObject *transport)
{
    int alone = accepted_alone(transport);
    if (alone < 0)
        return -1;
    PyObject *size = alone ? Py_NewRef(TR(transport, TR_PENDING_SIZE)) : call(transport, N_GET_WRITE_BUFFER_SIZE, NULL);
    if (size == NULL)
        return -1;
    int busy = PyObject_IsTrue(size);
    Py_DECREF(size);
    if (busy != 0)
        return busy < 0 ? -1 : 0;
    PyObject *closing = alone ? Py_NewRef(TR(transport, TR_CLOSING)) : call(transport, N_IS_CLOSING, NULL);
    if (closing == NULL)
        return -1;
    busy = PyObject_IsTrue(closing);
    Py_DECREF(closing);
    return busy < 0 ? -1 : !busy;
}

/* The method ``name`` of the channel's reference, called (for what the C does not take). */
static PyObject *
reference(PyObject *channel, enum name name, PyObject *transport, PyObject *data)
{
    PyObject *args[] = {channel, transport, data};
    return PyObject_VectorcallMethod(C.name[name], args, transport == NULL ? 1 : 3, NULL);
}

/* The channel's ``socket_fd`` as a C long in ``descriptor`` (-1 for None): 1, or 0 where the
 * reference is to run (unset, not an int, out of range). */
static int
descriptor_of(PyObject *fd, long *descriptor)
{
    *descriptor = -1;
    if (fd == Py_None)
        return 1;
    if (fd == NULL || !PyLong_CheckExact(fd))
        return 0;
    *descriptor = PyLong_AsLong(fd);
    if (*descriptor == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

PyObject *
write_last(PyObject *channel, PyObject *transport, PyObject *data)
{
    if (!C.ready)
        return reference(channel, N_WRITE_LAST, transport, data);
    PyObject *fd = CH(channel, CH_SOCKET_FD);
    long descriptor;
    if (!PyBytes_CheckExact(data) || !descriptor_of(fd, &descriptor))
        return reference(channel, N_WRITE_LAST, transport, data);
    Py_ssize_t sent = 0, size = PyBytes_GET_SIZE(data);
    int at_once = descriptor >= 0 ? idle(transport) : 0;
    if (at_once < 0)
        return NULL;
    if (at_once) {
        PyObject *args[] = {fd, data};
        PyObject *taken = send_last(NULL, args, 2);
        if (taken == NULL) {  /* (full, or the client is gone: the transport writes, and learns which) */
            if (!PyErr_ExceptionMatches(PyExc_OSError))
                return NULL;
            PyErr_Clear();
        }
        else {
            sent = PyLong_AsSsize_t(taken);
            Py_DECREF(taken);
            if (sent == -1 && PyErr_Occurred())
                return NULL;
        }
        if (sent == size)
            Py_RETURN_NONE;
    }
    PyObject *rest = sent ? PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + sent, size - sent) : Py_NewRef(data);
    if (rest == NULL)
        return NULL;
    PyObject *done = call(transport, N_WRITE, rest);
    Py_DECREF(rest);
    return done;
}

/* ``transport.close()``, with AcceptedTransport's (and its ``_close_socket``'s) common case inline:
 * the descriptor closed, and the protocol told of the loss on the loop's next turn. */
static PyObject *
close_transport(PyObject *transport)
{
    int alone = accepted_alone(transport);
    if (alone < 0)
        return NULL;
    PyObject *closing = alone ? TR(transport, TR_CLOSING) : NULL, *fd = alone ? TR(transport, TR_FD) : NULL;
    if (closing == Py_True)
        Py_RETURN_NONE;
    if (closing != Py_False || fd == NULL || !PyLong_CheckExact(fd) || TR(transport, TR_PENDING) == NULL ||
        TR(transport, TR_LOOP) == NULL)
        return call(transport, N_CLOSE, NULL);
    set_slot(transport, C.transport[TR_CLOSING], Py_True);
    if (TR(transport, TR_PENDING) != Py_None)  /* (the loop's transport closes, once it has what waits) */
        Py_RETURN_NONE;
    if (TR(transport, TR_WATCHING) != Py_False || TR(transport, TR_SOCK) != Py_None)
        return call(transport, N_CLOSE_SOCKET, NULL);
    long descriptor = PyLong_AsLong(fd);
    if (descriptor == -1 && PyErr_Occurred())
        return NULL;
    set_slot(transport, C.transport[TR_FD], C.closed_fd);
    if (descriptor >= 0 && close((int)descriptor) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    PyObject *args[] = {TR(transport, TR_LOOP), C.lost, transport, Py_None};  /* (_lost, compiled) */
    Py_INCREF(args[0]);
    PyObject *handle = PyObject_VectorcallMethod(C.name[N_CALL_SOON], args, 4, NULL);
    Py_DECREF(args[0]);
    if (handle == NULL)
        return NULL;
    Py_DECREF(handle);
    Py_RETURN_NONE;
}

/* Whether close's common case applies: nothing held or kept, the request read to its end (so
 * the client is not still sending: no linger). */
static int
closes_plainly(PyObject *channel)
{
    PyObject *parser = CH(channel, CH_PARSER), *state;
    if (CH(channel, CH_KEPT_LEASE) != Py_None || CH(channel, CH_CORKED) != Py_None ||
        CH(channel, CH_INPUT_FAILED) != Py_False || CH(channel, CH_TIMER) == NULL ||
        CH(channel, CH_TRANSPORT) == NULL || CH(channel, CH_LINGER_LEFT) == NULL || parser == NULL ||
        Py_TYPE(parser) != C.parser_type)
        return 0;
    state = SLOT(parser, C.parser_state);
    return state != NULL && PyLong_CheckExact(state) && PyLong_AsLong(state) == C.state_done;
}

PyObject *
close_channel(PyObject *channel)
{
    if (!C.ready || !closes_plainly(channel))
        return reference(channel, N_CLOSE, NULL, NULL);
    PyObject *timer = CH(channel, CH_TIMER);
    if (timer != C.no_timer) {  /* (a connection whose request came at accept never made one) */
        PyObject *done = call(timer, N_CANCEL, NULL);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
    }
    PyObject *transport = CH(channel, CH_TRANSPORT);
    if (transport == NULL || transport == Py_None)
        Py_RETURN_NONE;
    int lingering = PyObject_IsTrue(CH(channel, CH_LINGER_LEFT));
    if (lingering != 0)
        return lingering < 0 ? NULL : Py_NewRef(Py_None);
    Py_INCREF(transport);
    PyObject *done = close_transport(transport);
    Py_DECREF(transport);
    return done;
}

/* connection_lost's common case applies: nothing kept, watched, awaited or being answered. */
static int
lost_plainly(PyObject *channel)
{
    return CH(channel, CH_KEPT_LEASE) == Py_None && CH(channel, CH_BODY_RATE) == C.not_watched &&
           CH(channel, CH_RESPONSE_RATE) == C.not_watched && CH(channel, CH_DRAIN_WAITER) == Py_None &&
           CH(channel, CH_UPGRADED) == Py_None && CH(channel, CH_HEAD) == Py_None && CH(channel, CH_TIMER) != NULL &&
           CH(channel, CH_CONFIG) != NULL && CH(channel, CH_TRANSPORT) != NULL && CH(channel, CH_CORKED) != NULL &&
           CH(channel, CH_OWNER) != NULL && CH(channel, CH_EXCHANGE) != NULL && CH(channel, CH_APP) != NULL;
}

/* ``channel.config.first_waits.waiting.pop(channel, None)``; -1 on an error. */
static int
forget_first_wait(PyObject *channel)
{
    PyObject *waits = PyObject_GetAttr(CH(channel, CH_CONFIG), C.name[N_FIRST_WAITS]);
    PyObject *waiting = waits == NULL ? NULL : PyObject_GetAttr(waits, C.name[N_WAITING]);
    Py_XDECREF(waits);
    if (waiting == NULL)
        return -1;
    int found = PyDict_CheckExact(waiting) ? PyDict_Contains(waiting, channel) : -2, failed = 0;
    if (found == 1)
        failed = PyDict_DelItem(waiting, channel);
    else if (found == -2) {
        PyObject *args[] = {waiting, channel, Py_None};
        PyObject *popped = PyObject_VectorcallMethod(C.name[N_POP], args, 3, NULL);
        failed = popped == NULL ? -1 : 0;
        Py_XDECREF(popped);
    }
    Py_DECREF(waiting);
    return found == -1 || failed < 0 ? -1 : 0;
}

/* ``channel.connection_lost(exc)``, with its common case inline. */
static PyObject *
lose(PyObject *channel, PyObject *exc)
{
    int ok = C.ready ? judged(&C.channels, Py_TYPE(channel)) : 0;
    if (ok < 0)
        return NULL;
    if (!ok || !lost_plainly(channel))
        return call(channel, N_CONNECTION_LOST, exc);
    PyObject *timer = CH(channel, CH_TIMER), *owner, *done;
    if (timer != C.no_timer) {
        if ((done = call(timer, N_CLOSE, NULL)) == NULL)
            return NULL;
        Py_DECREF(done);
    }
    else if (forget_first_wait(channel) < 0)
        return NULL;
    set_slot(channel, C.channel[CH_TIMER], C.gone_timer);
    int gone = CH(channel, CH_TRANSPORT) == Py_None;
    set_slot(channel, C.channel[CH_TRANSPORT], Py_None);
    set_slot(channel, C.channel[CH_CORKED], Py_None);
    if (gone)  /* (lost before) */
        Py_RETURN_NONE;
    owner = CH(channel, CH_OWNER);  /* (its _head is None: lost_plainly) */
    if (owner != Py_None) {
        Py_INCREF(owner);
        done = call(owner, N_CONNECTION_CLOSED, channel);
        Py_DECREF(owner);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
    }
    if (CH(channel, CH_EXCHANGE) == Py_None && CH(channel, CH_UPGRADED) == Py_None)  /* (_let_app_go) */
        set_slot(channel, C.channel[CH_APP], C.no_app);
    Py_RETURN_NONE;
}

const char accepted_lost_doc[] =
    "accepted_lost($module, transport, exc, /)\n"
    "--\n"
    "\n"
    "transport._lost(exc) of an AcceptedTransport its compiled close closed: its protocol told, by\n"
    "connection_lost's common case inline for a connection (see _accepted.c).";

PyObject *
accepted_lost(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!arguments(nargs, 2, "accepted_lost(transport, exc)"))
        return NULL;
    PyObject *transport = args[0], *exc = args[1];
    int ok = C.accepted.base != NULL ? judged(&C.accepted, Py_TYPE(transport)) : 0;
    if (ok < 0)
        return NULL;
    PyObject *protocol = ok ? TR(transport, TR_PROTOCOL) : NULL;
    if (protocol == NULL)
        return call(transport, N_LOST, exc);
    Py_INCREF(protocol);
    set_slot(transport, C.transport[TR_PROTOCOL], Py_None);
    PyObject *done = protocol == Py_None ? Py_NewRef(Py_None) : lose(protocol, exc);
    Py_DECREF(protocol);
    return done;
}

/* ``transport.serve(protocol.connection_made, transport)`` past its step: ``settle`` inline; -1 on an
 * error. */
static int
settle(PyObject *transport)
{
    if (TR(transport, TR_CLOSING) != Py_False || TR(transport, TR_PENDING) != Py_None ||
        TR(transport, TR_LOOP_TRANSPORT) != Py_None)
        return 0;
    PyObject *needs = call(TR(transport, TR_PROTOCOL), N_NEEDS_READING, NULL);
    int reads = needs == NULL ? -1 : PyObject_IsTrue(needs);
    Py_XDECREF(needs);
    if (reads <= 0)
        return reads;
    PyObject *first_bytes = TR(transport, TR_FIRST_BYTES), *done;
    if (TR(transport, TR_READ_ONCE) != Py_False || TR(transport, TR_PAUSED) != Py_False || first_bytes == Py_None)
        done = call(transport, N_HAND_TO_LOOP, NULL);
    else {  /* (its first bytes are waited for here) */
        PyObject *read_first = PyObject_GetAttr(transport, C.name[N_READ_FIRST]);
        if (read_first == NULL)
            return -1;
        set_slot(transport, C.transport[TR_WATCHING], Py_True);
        Py_INCREF(first_bytes);
        PyObject *args[] = {first_bytes, TR(transport, TR_FD), read_first};
        done = PyObject_VectorcallMethod(C.name[N_WATCH], args, 3, NULL);
        Py_DECREF(first_bytes);
        Py_DECREF(read_first);
    }
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* What serve does with an exception its step or settle raised: the loop's exception handler told,
 * and the connection reset; -1 if that fails or the exception is one to let through. */
static int
serving_failed(PyObject *transport, PyObject *protocol)
{
    if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) || PyErr_ExceptionMatches(PyExc_SystemExit))
        return -1;
    PyObject *value = caught();
    PyObject *context = Py_BuildValue("{O:O,O:O,O:O,O:O}", C.name[N_MESSAGE], C.name[N_SERVING_FAILED],
                                      C.name[N_EXCEPTION], value, C.name[N_PROTOCOL], protocol,
                                      C.name[N_TRANSPORT], transport);
    Py_XDECREF(value);
    PyObject *told = context == NULL ? NULL : call(TR(transport, TR_LOOP), N_CALL_EXCEPTION_HANDLER, context);
    Py_XDECREF(context);
    PyObject *aborted = told == NULL ? NULL : call(transport, N_ABORT, NULL);
    Py_XDECREF(told);
    Py_XDECREF(aborted);
    return aborted == NULL ? -1 : 0;
}

/* What accept learnt, given to a new connection (listeners.py's _told); -1 on an error. */
static int
told(PyObject *protocol, PyObject *local, PyObject *fd, PyObject *peer, PyObject *data)
{
    return PyObject_SetAttr(protocol, C.name[N_EARLY_DATA], data) < 0 ||
           (peer != Py_None && PyObject_SetAttr(protocol, C.name[N_PEERNAME], peer) < 0) ||
           PyObject_SetAttr(protocol, C.name[N_SOCKNAME], local) < 0 ||
           PyObject_SetAttr(protocol, C.name[N_SOCKET_FD], fd) < 0 ? -1 : 0;
}

/* ``template.copy_for(fd, protocol, peer, read_once)`` inline. */
static PyObject *
copy_for(PyObject *template, PyObject *fd, PyObject *protocol, PyObject *peer, PyObject *read_once)
{
    PyObject *transport = PyObject_CallOneArg(C.copy_of, template);
    if (transport == NULL)
        return NULL;
    set_slot(transport, C.transport[TR_FD], fd);
    set_slot(transport, C.transport[TR_PROTOCOL], protocol);
    set_slot(transport, C.transport[TR_PEER], peer);
    set_slot(transport, C.transport[TR_READ_ONCE], read_once);
    return transport;
}

const char serve_accepted_doc[] =
    "serve_accepted($module, factory, template, fd, peer, data, /)\n"
    "--\n"
    "\n"
    "listeners.serve_accepted_py, compiled: a new connection made by factory() and served on its\n"
    "accepted socket (a copy of the AcceptedTransport template), given the bytes read at accept;\n"
    "what factory() raised (the descriptor then closed), else None.";

PyObject *
serve_accepted(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!arguments(nargs, 5, "serve_accepted(factory, template, fd, peer, data)"))
        return NULL;
    PyObject *factory = args[0], *template = args[1], *fd = args[2], *peer = args[3], *data = args[4];
    int ok = C.accepted.base != NULL ? judged(&C.accepted, Py_TYPE(template)) : 0;
    if (ok < 0)
        return NULL;
    if (!PyLong_CheckExact(fd) || !PyBytes_CheckExact(data)) {
        PyErr_SetString(PyExc_TypeError, "serve_accepted: fd must be an int and data bytes");
        return NULL;
    }
    PyObject *protocol = PyObject_CallNoArgs(factory);
    if (protocol == NULL) {  /* (reported as a failed set-up is, by the caller) */
        if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) || PyErr_ExceptionMatches(PyExc_SystemExit))
            return NULL;
        PyObject *value = caught();
        close((int)PyLong_AsLong(fd));
        return value;
    }
    PyObject *read_once = PyBytes_GET_SIZE(data) ? Py_True : Py_False;
    PyObject *local = ok && TR(template, TR_LOCAL) != NULL ? Py_NewRef(TR(template, TR_LOCAL))
                                                           : PyObject_GetAttr(template, C.name[N_LOCAL]);
    int failed = local == NULL ? -1 : told(protocol, local, fd, peer, data);
    Py_XDECREF(local);
    PyObject *transport = failed < 0 ? NULL :
                          ok ? copy_for(template, fd, protocol, peer, read_once) :
                          PyObject_VectorcallMethod(C.name[N_COPY_FOR], (PyObject *[]){template, fd, protocol, peer,
                                                                                      read_once}, 5, NULL);
    if (transport == NULL) {
        Py_DECREF(protocol);
        return NULL;
    }
    if (ok) {  /* (serve, inline) */
        PyObject *made = call(protocol, N_CONNECTION_MADE, transport);
        failed = made == NULL ? -1 : settle(transport);
        Py_XDECREF(made);
        if (failed < 0)
            failed = serving_failed(transport, protocol);
    }
    else {
        PyObject *step = PyObject_GetAttr(protocol, C.name[N_CONNECTION_MADE]);
        PyObject *call[] = {transport, step, transport};
        PyObject *done = step == NULL ? NULL : PyObject_VectorcallMethod(C.name[N_SERVE], call, 3, NULL);
        Py_XDECREF(step);
        Py_XDECREF(done);
        failed = done == NULL ? -1 : 0;
    }
    Py_DECREF(transport);
    Py_DECREF(protocol);
    return failed < 0 ? NULL : Py_NewRef(Py_None);
}

const char set_close_parts_doc[] =
    "set_close_parts($module, channel_type, parser_type, done, no_timer, gone_timer, not_watched, no_app, /)\n"
    "--\n"
    "\n"
    "Register what the compiled close and loss read: server.ServerHttpProtocol (its slots, and the\n"
    "connection_lost it stands for), parser.RequestParser's state and its DONE, timers.NO_TIMER and\n"
    "GONE_TIMER, rates.NOT_WATCHED and seam.NO_APP (see _accepted.c).";

PyObject *
set_close_parts(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyLong_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "set_close_parts(channel_type, parser_type, done, no_timer, gone_timer, "
                                         "not_watched, no_app)");
        return NULL;
    }
    static const char *const PARSER_STATE[] = {"state"};
    Py_ssize_t channel[N_CH], state;
    long done = PyLong_AsLong(args[2]);
    if ((done == -1 && PyErr_Occurred()) || offsets_of(args[0], CHANNEL_SLOTS, N_CH, channel) < 0 ||
        offsets_of(args[1], PARSER_STATE, 1, &state) < 0 || interned(NAMES, N_N, C.name) < 0 ||
        set_verdicts_base(&C.channels, args[0]) < 0)
        return NULL;
    if (C.closed_fd == NULL && (C.closed_fd = PyLong_FromLong(-1)) == NULL)
        return NULL;
    memcpy(C.channel, channel, sizeof(channel));
    C.parser_state = state;
    C.state_done = done;
    Py_XSETREF(C.parser_type, (PyTypeObject *)Py_NewRef(args[1]));
    Py_XSETREF(C.no_timer, Py_NewRef(args[3]));
    Py_XSETREF(C.gone_timer, Py_NewRef(args[4]));
    Py_XSETREF(C.not_watched, Py_NewRef(args[5]));
    Py_XSETREF(C.no_app, Py_NewRef(args[6]));
    C.ready = 1;
    Py_RETURN_NONE;
}

const char set_accepted_type_doc[] =
    "set_accepted_type($module, accepted_type, /)\n"
    "--\n"
    "\n"
    "Register workers.accepted.AcceptedTransport: its slots, and the methods the compiled close\n"
    "stands for (see _accepted.c).";

PyObject *
set_accepted_type(PyObject *module, PyObject *accepted_type)
{
    Py_ssize_t transport[N_TR];
    if (!PyType_Check(accepted_type)) {
        PyErr_SetString(PyExc_TypeError, "set_accepted_type(accepted_type)");
        return NULL;
    }
    if (offsets_of(accepted_type, TRANSPORT_SLOTS, N_TR, transport) < 0 || interned(NAMES, N_N, C.name) < 0 ||
        set_verdicts_base(&C.accepted, accepted_type) < 0)
        return NULL;
    if ((C.lost == NULL && (C.lost = PyObject_GetAttrString(module, "accepted_lost")) == NULL) ||
        (C.copy_of == NULL && (C.copy_of = PyObject_GetAttrString(module, "copy_of")) == NULL))
        return NULL;
    memcpy(C.transport, transport, sizeof(transport));
    Py_RETURN_NONE;
}
