/* asgi_sender(exchange): the ``send`` an ASGI app is given for an exchange of asgi.exchange's
 * HttpExchange, compiled for the two messages nearly every response is: ``http.response.start``
 * with a status and headers of bytes pairs, then one ``http.response.body`` with the whole body.
 * ``HttpExchange.send`` is its reference: those two take its short way (``_start``, and the
 * whole answer by answer_whole), in its order, calling the same methods (the connection's
 * ``response_head`` inline for its head cache's hit); every other message,
 * or a value of another type, goes to ``HttpExchange.send`` itself.
 *
 * An app awaits what ``send`` returns. For the two messages that is ``SENT``, an awaitable done
 * already (no coroutine is made, nor a frame run), or the exchange's ``_drain()`` when the
 * whole answer filled the transport; for the others, the coroutine ``HttpExchange.send`` makes.
 * A subclass of the exchange is given its own ``send``. */
#include <Python.h>

#include "_answer.h"
#include "_paths.h"

static const char *const SLOTS[] = {"protocol", "head", "_body", "_body_ended", "_state", "_detached",
                                    "_head_bytes", "_response", "_trailers"};
enum slot { E_PROTOCOL, E_HEAD, E_BODY, E_BODY_ENDED, E_STATE, E_DETACHED, E_HEAD_BYTES, E_RESPONSE, E_TRAILERS, N_E };
static const char *const NAMES[] = {"type", "status", "headers", "trailers", "body", "more_body",
                                    "http.response.start", "http.response.body", "send", "_drain", "end",
                                    "framing", "truncated", "complete", "_length_error", "response_head",
                                    "normalise", "keep_alive", "keep_alive_allowed", "method", "version", "config",
                                    "heads", "cache", "head", "HEAD"};
enum name {
    N_TYPE, N_STATUS, N_HEADERS, N_TRAILERS, N_BODY, N_MORE_BODY, N_START_KIND, N_BODY_KIND, N_SEND, N_DRAIN,
    N_END, N_FRAMING, N_TRUNCATED, N_COMPLETE, N_LENGTH_ERROR, N_RESPONSE_HEAD, N_NORMALISE, N_KEEP_ALIVE,
    N_KEEP_ALIVE_ALLOWED, N_METHOD, N_VERSION, N_CONFIG, N_HEADS, N_CACHE, N_HEAD, N_HEAD_METHOD, N_N
};
/* The channel type's method the C stands for: a subclass that replaces it has it called. */
static const char *const OWN_METHODS[] = {"response_head"};
static PyObject *own_methods[1];

static struct {
    PyTypeObject *type;
    Py_ssize_t slot[N_E];
    PyObject *name[N_N];
    PyObject *start, *started, *done; /* the exchange's states */
    PyObject *bytes_pairs, *header_pairs, *normalise_kw, *empty, *cached_head;
    struct verdicts own; /* on the channel types: whether each keeps response_head */
} S = {.own = {.count = 1, .names = OWN_METHODS, .methods = own_methods}};

#define E(obj, index) SLOT(obj, S.slot[index])

/* -- SENT: an awaitable that is done as it is awaited ------------------------------------- */

static PyObject *
sent_next(PyObject *Py_UNUSED(self))
{
    return NULL; /* (no error set: StopIteration, the await's value None) */
}

/* As a coroutine that has returned: what asyncio's create_task() takes (registered as a
 * Coroutine in asgi/exchange.py) and runs to its end at its first step. */
static PyObject *
sent_send(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(value))
{
    PyErr_SetNone(PyExc_StopIteration);
    return NULL;
}

static PyObject *
sent_throw(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw(typ[, val[, tb]])");
        return NULL;
    }
    PyObject *typ = args[0], *val = nargs > 1 ? args[1] : Py_None;
    if (PyExceptionInstance_Check(typ))
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    else if (PyExceptionClass_Check(typ))
        PyErr_SetObject(typ, val);
    else
        PyErr_SetString(PyExc_TypeError, "exceptions must be classes or instances deriving from BaseException");
    return NULL;
}

static PyObject *
sent_close(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_NONE;
}

static PyMethodDef sent_methods[] = {
    {"send", (PyCFunction)sent_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))sent_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)sent_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods sent_async = {.am_await = PyObject_SelfIter};

static PyTypeObject SentType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "server.protocol._chead.Sent",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "What send() returns for a message it has sent: awaited, it is done at once.",
    .tp_as_async = &sent_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = sent_next,
    .tp_methods = sent_methods,
};
static PyObject SENT = {_PyObject_EXTRA_INIT 1, &SentType};

/* -- the two messages ------------------------------------------------------------------------ */

/* A key of ``message``: borrowed, ``absent`` if it is not there; NULL on an error. */
static PyObject *
get(PyObject *message, enum name key, PyObject *absent)
{
    PyObject *value = PyDict_GetItemWithError(message, S.name[key]);
    return value != NULL || PyErr_Occurred() ? value : absent;
}

static int
is_kind(PyObject *kind, enum name which)
{
    return kind == S.name[which] || (PyUnicode_CheckExact(kind) && PyUnicode_Compare(kind, S.name[which]) == 0);
}

/* An attribute of ``obj``: 1 if it is True, 0 if False, 2 if it is anything else; -1 on an error. */
static int
bool_attribute(PyObject *obj, enum name name)
{
    PyObject *value = PyObject_GetAttr(obj, S.name[name]);
    if (value == NULL)
        return -1;
    Py_DECREF(value);
    return value == Py_True ? 1 : value == Py_False ? 0 : 2;
}

/* The connection's response_head(head, status, None, fields, normalise=header_pairs), its
 * common case inline (the head cache's hit, ``cached_head``) where the connection's class keeps
 * ServerHttpProtocol's; NULL on an error. */
static PyObject *
response_head(PyObject *protocol, PyObject *head, PyObject *status, PyObject *fields)
{
    int own = judged(&S.own, Py_TYPE(protocol)), kept = own > 0 ? bool_attribute(head, N_KEEP_ALIVE) : 0;
    int allowed = kept == 1 ? bool_attribute(protocol, N_KEEP_ALIVE_ALLOWED) : 0;
    if (own < 0 || kept < 0 || allowed < 0)
        return NULL;
    if (!own || kept == 2 || allowed == 2) {
        PyObject *call[] = {protocol, head, status, Py_None, fields, S.header_pairs};
        return PyObject_VectorcallMethod(S.name[N_RESPONSE_HEAD], call, 5, S.normalise_kw);
    }
    PyObject *keep_alive = kept && allowed ? Py_True : Py_False, *method = NULL, *version = NULL, *config = NULL,
             *heads = NULL, *cache = NULL, *made = NULL;
    if ((method = PyObject_GetAttr(head, S.name[N_METHOD])) == NULL ||
        (version = PyObject_GetAttr(head, S.name[N_VERSION])) == NULL ||
        (config = PyObject_GetAttr(protocol, S.name[N_CONFIG])) == NULL ||
        (heads = PyObject_GetAttr(config, S.name[N_HEADS])) == NULL ||
        (cache = PyObject_GetAttr(heads, S.name[N_CACHE])) == NULL)
        goto done;
    int is_head = PyObject_RichCompareBool(method, S.name[N_HEAD_METHOD], Py_EQ);
    if (is_head < 0)
        goto done;
    PyObject *lookup[] = {cache, status, Py_None, fields, is_head ? Py_True : Py_False, version, keep_alive, Py_None};
    made = PyObject_Vectorcall(S.cached_head, lookup, 8, NULL);
    if (made == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {  /* (what the cache cannot key on) */
        PyErr_Clear();
        made = Py_NewRef(Py_None);
    }
    if (made == Py_None) {
        Py_DECREF(made);
        PyObject *call[] = {heads, status, Py_None, fields, method, version, keep_alive, Py_None, S.header_pairs};
        made = PyObject_VectorcallMethod(S.name[N_HEAD], call, 9, NULL);
    }
done:
    Py_XDECREF(method);
    Py_XDECREF(version);
    Py_XDECREF(config);
    Py_XDECREF(heads);
    Py_XDECREF(cache);
    return made;
}

/* _start's short way: the head made (by the connection's response_head), nothing written. 1 when
 * done; 0 when the message is not of that way (nothing done); -1 on an error. */
static int
start(PyObject *exchange, PyObject *message)
{
    PyObject *status = get(message, N_STATUS, Py_None), *headers, *trailers;
    if (status == NULL || (headers = get(message, N_HEADERS, Py_None)) == NULL ||
        (trailers = get(message, N_TRAILERS, Py_False)) == NULL)
        return -1;
    if (!PyLong_CheckExact(status) || trailers != Py_False)
        return 0;
    long code = PyLong_AsLong(status);
    if (code < 200 || code > 999) {
        if (code == -1 && PyErr_Occurred())
            PyErr_Clear();
        return 0;
    }
    Py_INCREF(status);
    PyObject *fields = PyObject_CallOneArg(S.bytes_pairs, headers);
    if (fields == NULL || fields == Py_None) {
        Py_DECREF(status);
        Py_XDECREF(fields);
        return fields == NULL ? -1 : 0;
    }
    PyObject *protocol = Py_NewRef(E(exchange, E_PROTOCOL)), *head = Py_NewRef(E(exchange, E_HEAD));
    PyObject *made = response_head(protocol, head, status, fields);
    Py_DECREF(protocol);
    Py_DECREF(head);
    Py_DECREF(status);
    Py_DECREF(fields);
    if (made == NULL)
        return -1;
    PyObject *pair = PySequence_Tuple(made);
    Py_DECREF(made);
    if (pair == NULL)
        return -1;
    if (PyTuple_GET_SIZE(pair) != 2) {
        PyErr_Format(PyExc_ValueError, "expected 2 values to unpack (got %zd)", PyTuple_GET_SIZE(pair));
        Py_DECREF(pair);
        return -1;
    }
    set_slot(exchange, S.slot[E_RESPONSE], PyTuple_GET_ITEM(pair, 0));
    set_slot(exchange, S.slot[E_HEAD_BYTES], PyTuple_GET_ITEM(pair, 1));
    Py_DECREF(pair);
    set_slot(exchange, S.slot[E_TRAILERS], Py_None);
    set_slot(exchange, S.slot[E_STATE], S.started);
    return 1;
}

/* The whole body at once (send's common case): answered, the request body ended, the length
 * checked. What the app awaits (SENT, or the drain); Py_None when the message is not of that way
 * (nothing done); NULL on an error. */
static PyObject *
whole_body(PyObject *exchange, PyObject *message)
{
    PyObject *body = get(message, N_BODY, S.empty), *more;
    if (body == NULL || (more = get(message, N_MORE_BODY, Py_False)) == NULL)
        return NULL;
    if (!PyBytes_CheckExact(body) || more != Py_False || E(exchange, E_TRAILERS) != Py_None)
        Py_RETURN_NONE;
    PyObject *protocol = Py_NewRef(E(exchange, E_PROTOCOL));
    PyObject *call[] = {protocol, E(exchange, E_RESPONSE), E(exchange, E_HEAD_BYTES), body, PyLong_FromLong(0)};
    Py_INCREF(body);
    PyObject *wait = call[4] == NULL ? NULL : answer_whole(NULL, call, 5);
    Py_XDECREF(call[4]);
    Py_DECREF(body);
    int waits = wait == NULL ? -1 : PyObject_IsTrue(wait);
    Py_XDECREF(wait);
    if (waits < 0)
        goto failed;
    set_slot(exchange, S.slot[E_STATE], S.done); /* (_done, inline) */
    PyObject *request_body = E(exchange, E_BODY);
    if (request_body == Py_None) {
        set_slot(exchange, S.slot[E_BODY_ENDED], Py_True);
    }
    else {
        PyObject *ended = PyObject_CallMethodNoArgs(request_body, S.name[N_END]);
        if (ended == NULL)
            goto failed;
        Py_DECREF(ended);
    }
    PyObject *framing = PyObject_GetAttr(protocol, S.name[N_FRAMING]);
    if (framing == NULL)
        goto failed;
    if (framing != Py_None) { /* (None: it went whole, as declared) */
        int truncated = attribute_true(framing, S.name[N_TRUNCATED]);
        int complete = truncated != 0 ? 0 : attribute_true(framing, S.name[N_COMPLETE]);
        PyObject *told = NULL;
        if (truncated >= 0 && complete >= 0 && (truncated || !complete))
            told = PyObject_CallMethodOneArg(exchange, S.name[N_LENGTH_ERROR], framing);
        Py_DECREF(framing);
        if (truncated < 0 || complete < 0 || (truncated || !complete)) {
            Py_XDECREF(told);
            if (told != NULL) /* (it raises, always) */
                PyErr_SetString(PyExc_SystemError, "_length_error returned");
            goto failed;
        }
    }
    else {
        Py_DECREF(framing);
    }
    Py_DECREF(protocol);
    return waits ? PyObject_CallMethodNoArgs(exchange, S.name[N_DRAIN]) : Py_NewRef(&SENT);
failed:
    Py_DECREF(protocol);
    return NULL;
}

static PyObject *
send(PyObject *exchange, PyObject *message)
{
    if (PyDict_CheckExact(message) && E(exchange, E_DETACHED) == Py_False) {
        PyObject *kind = get(message, N_TYPE, Py_None), *state = E(exchange, E_STATE);
        if (kind == NULL)
            return NULL;
        if (state == S.started && is_kind(kind, N_BODY_KIND)) {
            PyObject *sent = whole_body(exchange, message);
            if (sent != Py_None)
                return sent;
            Py_DECREF(sent);
        }
        else if (state == S.start && is_kind(kind, N_START_KIND)) {
            int started = start(exchange, message);
            if (started != 0)
                return started < 0 ? NULL : Py_NewRef(&SENT);
        }
    }
    return PyObject_CallMethodOneArg(exchange, S.name[N_SEND], message);
}

static PyMethodDef SEND_DEF = {"send", (PyCFunction)send, METH_O,
                               "send(message): the ASGI app's send (see _send.c), for this exchange."};

const char asgi_sender_doc[] =
    "asgi_sender($module, exchange, /)\n"
    "--\n"
    "\n"
    "The send() an ASGI app is given for ``exchange``: compiled for an HttpExchange (see\n"
    "asgi/exchange.py), the exchange's own send for a subclass.";

PyObject *
asgi_sender(PyObject *Py_UNUSED(module), PyObject *exchange)
{
    if (S.type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_sender() before set_sender_parts()");
        return NULL;
    }
    if (Py_TYPE(exchange) != S.type)
        return PyObject_GetAttr(exchange, S.name[N_SEND]);
    return PyCFunction_NewEx(&SEND_DEF, exchange, NULL);
}

const char set_sender_parts_doc[] =
    "set_sender_parts($module, exchange_type, states, bytes_pairs, header_pairs, channel_type, cached_head, /)\n"
    "--\n"
    "\n"
    "Register what asgi_sender()'s send reads and calls: asgi.exchange.HttpExchange (its slots), its\n"
    "states (START, STARTED, DONE), fields.bytes_pairs, messages.header_pairs, server.ServerHttpProtocol\n"
    "(whose response_head it inlines) and heads.cached_head. Returns the type of what send returns for a\n"
    "message it has sent (to register as a Coroutine).";

PyObject *
set_sender_parts(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyType_Check(args[0]) || !PyTuple_CheckExact(args[1]) || PyTuple_GET_SIZE(args[1]) != 3 ||
        !PyType_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "set_sender_parts(exchange_type, (START, STARTED, DONE), bytes_pairs, "
                                         "header_pairs, channel_type, cached_head)");
        return NULL;
    }
    Py_ssize_t slot[N_E];
    if (offsets_of(args[0], SLOTS, N_E, slot) < 0 || interned(NAMES, N_N, S.name) < 0 || PyType_Ready(&SentType) < 0 ||
        set_verdicts_base(&S.own, args[4]) < 0)
        return NULL;
    if (S.normalise_kw == NULL && (S.normalise_kw = PyTuple_Pack(1, S.name[N_NORMALISE])) == NULL)
        return NULL;
    if (S.empty == NULL && (S.empty = PyBytes_FromStringAndSize(NULL, 0)) == NULL)
        return NULL;
    memcpy(S.slot, slot, sizeof(slot));
    Py_XSETREF(S.start, Py_NewRef(PyTuple_GET_ITEM(args[1], 0)));
    Py_XSETREF(S.started, Py_NewRef(PyTuple_GET_ITEM(args[1], 1)));
    Py_XSETREF(S.done, Py_NewRef(PyTuple_GET_ITEM(args[1], 2)));
    Py_XSETREF(S.bytes_pairs, Py_NewRef(args[2]));
    Py_XSETREF(S.header_pairs, Py_NewRef(args[3]));
    Py_XSETREF(S.cached_head, Py_NewRef(args[5]));
    Py_XSETREF(S.type, (PyTypeObject *)Py_NewRef(args[0]));
    return Py_NewRef((PyObject *)&SentType);
}
