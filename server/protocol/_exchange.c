/* run_exchange(): a WSGI exchange's ``run`` (wsgi/exchange.py), its app thread's whole part,
 * compiled. ``run`` is its reference: it does what run does, in its order, calling the same
 * methods, and inlines the common case of three of them: ``_send_result`` of a list of one bytes
 * object after start_response, the whole answer's hand-over (``_hand_over_final`` to the loop's
 * ``answer_exchange``), and the closing of the iterable (a list, and no request body: nothing to
 * close). A subclass, or a worker with request hooks, runs ``run`` itself. */
#include <Python.h>

#include "_answer.h"
#include "_paths.h"

static const char *const SLOTS[] = {"protocol", "connection", "head", "config", "pool", "_body", "_final",
                                    "_environ", "_status", "_headers", "_response", "_head_handed", "_handed",
                                    "_lease", "_aborted"};
enum slot {
    X_PROTOCOL, X_CONNECTION, X_HEAD, X_CONFIG, X_POOL, X_BODY, X_FINAL, X_ENVIRON, X_STATUS, X_HEADERS, X_RESPONSE,
    X_HEAD_HANDED, X_HANDED, X_LEASE, X_ABORTED, N_X
};
static const char *const NAMES[] = {"run", "config", "hooks", "request_forwarded", "forwarded", "client_environ",
                                    "fields", "host", "start_response", "app", "_send_result", "response_head",
                                    "no_body", "sized", "length", "_cut", "_app_failed", "log",
                                    "_hand_over_final", "answers", "append", "call_in_loop", "release"};
enum name {
    S_RUN, S_CONFIG, S_HOOKS, S_REQUEST_FORWARDED, S_FORWARDED, S_CLIENT_ENVIRON, S_FIELDS, S_HOST,
    S_START_RESPONSE, S_APP, S_SEND_RESULT, S_RESPONSE_HEAD, S_NO_BODY, S_SIZED, S_LENGTH, S_CUT, S_APP_FAILED,
    S_LOG, S_HAND_OVER_FINAL, S_ANSWERS, S_APPEND, S_CALL_IN_LOOP, S_RELEASE, N_S
};

static struct {
    PyTypeObject *type;
    Py_ssize_t slot[N_X];
    PyObject *name[N_S];
    PyObject *build_environ, *empty_input, *status_line, *disconnected, *close, *answer_exchange;
} R;

#define X(obj, index) SLOT(obj, R.slot[index])
#define set_x(obj, index, value) set_slot(obj, R.slot[index], value)
#define attr_true(obj, which) attribute_true(obj, R.name[which])

static PyObject *
attr(PyObject *obj, enum name name)
{
    return PyObject_GetAttr(obj, R.name[name]);
}

static PyObject *
method(PyObject *obj, enum name name, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *call[6];
    call[0] = obj;
    for (Py_ssize_t k = 0; k < nargs; k++)
        call[k + 1] = args[k];
    return PyObject_VectorcallMethod(R.name[name], call, nargs + 1, NULL);
}

/* Calls that return None: 0, or -1 with the error set. */
static int
done(PyObject *result)
{
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* Whether the exchange has every slot it reads set (a copy of the template has: __init__ set them). */
static int
slots_set(PyObject *exchange)
{
    for (int k = 0; k < N_X; k++) {
        if (X(exchange, k) == NULL)
            return 0;
    }
    return 1;
}

/* Whether the worker runs gunicorn's request hooks (the channel's config's ``hooks``): 1, 0, -1. */
static int
has_hooks(PyObject *channel)
{
    PyObject *config = attr(channel, S_CONFIG);
    if (config == NULL)
        return -1;
    PyObject *hooks = attr(config, S_HOOKS);
    Py_DECREF(config);
    if (hooks == NULL)
        return -1;
    int has = hooks != Py_None;
    Py_DECREF(hooks);
    return has;
}

/* What ``channel.forwarded(head)`` gives, looked up first where the channel keeps it. */
static PyObject *
forwarded_of(PyObject *channel, PyObject *head)
{
    PyObject *known = attr(channel, S_REQUEST_FORWARDED);
    if (known == NULL)
        return NULL;
    PyObject *forwarded = NULL;
    if (PyTuple_CheckExact(known) && PyTuple_GET_SIZE(known) == 2 && PyTuple_GET_ITEM(known, 0) == head)
        forwarded = Py_NewRef(PyTuple_GET_ITEM(known, 1));
    Py_DECREF(known);
    return forwarded != NULL ? forwarded : method(channel, S_FORWARDED, &head, 1);
}

/* run's environ: build_environ(connection.client_environ(head, forwarded), head, input, length,
 * forwarded.fields, forwarded.host), kept in the exchange's ``_environ``. */
static PyObject *
environ_of(PyObject *exchange, PyObject *head, PyObject *forwarded, PyObject *wsgi_input, PyObject *content_length)
{
    PyObject *pair[] = {head, forwarded};
    PyObject *client = method(X(exchange, X_CONNECTION), S_CLIENT_ENVIRON, pair, 2), *fields = NULL, *host = NULL;
    PyObject *environ = NULL;
    if (client != NULL && (fields = attr(forwarded, S_FIELDS)) != NULL && (host = attr(forwarded, S_HOST)) != NULL) {
        PyObject *args[] = {client, head, wsgi_input != Py_None ? wsgi_input : R.empty_input, content_length, fields,
                            host};
        environ = PyObject_Vectorcall(R.build_environ, args, 6, NULL);
    }
    Py_XDECREF(client);
    Py_XDECREF(fields);
    Py_XDECREF(host);
    if (environ != NULL)
        set_x(exchange, X_ENVIRON, environ);
    return environ;
}

/* _send_result's whole answer: a list of one bytes object after start_response (any other result
 * goes to the method). The head made, the body cut where it must be, and both kept for the hand-over. */
static int
send_result(PyObject *exchange, PyObject *channel, PyObject *head, PyObject *result)
{
    PyObject *status = X(exchange, X_STATUS), *headers = X(exchange, X_HEADERS);
    if (!PyList_CheckExact(result) || PyList_GET_SIZE(result) != 1 || !PyBytes_CheckExact(PyList_GET_ITEM(result, 0)) ||
        X(exchange, X_RESPONSE) != Py_None || status == Py_None || !PyList_CheckExact(headers))
        return done(method(exchange, S_SEND_RESULT, &result, 1));
    PyObject *body = Py_NewRef(PyList_GET_ITEM(result, 0)), *response = NULL, *made = NULL, *final = NULL;
    PyObject *size = PyLong_FromSsize_t(PyBytes_GET_SIZE(body)), *fields = PyList_AsTuple(headers);
    int failed = -1;
    if (size == NULL || fields == NULL)
        goto end;
    PyObject *args[] = {channel, head, status, R.status_line, fields, size};
    if ((response = PyObject_VectorcallMethod(R.name[S_RESPONSE_HEAD], args, 6, NULL)) == NULL)
        goto end;
    set_x(exchange, X_RESPONSE, response);
    if ((made = PySequence_GetItem(response, 0)) == NULL)
        goto end;
    int cut = attr_true(made, S_NO_BODY);
    if (cut == 0 && (cut = attr_true(made, S_SIZED)) >= 0) {
        PyObject *length = cut ? NULL : attr(made, S_LENGTH);
        if (!cut && length == NULL)
            goto end;
        cut = length != NULL && length != Py_None ? PyObject_RichCompareBool(size, length, Py_GT) : 0;
        Py_XDECREF(length);
    }
    if (cut < 0)
        goto end;
    if (cut) {
        PyObject *pair[] = {made, body};
        PyObject *kept = method(exchange, S_CUT, pair, 2);
        if (kept == NULL)
            goto end;
        Py_SETREF(body, kept);
    }
    else
        set_x(exchange, X_HANDED, size);
    int aborted = PyObject_IsTrue(X(exchange, X_ABORTED));
    if (aborted) {
        if (aborted > 0)
            PyErr_SetNone(R.disconnected);
        goto end;
    }
    set_x(exchange, X_HEAD_HANDED, Py_True);
    if ((final = PyTuple_Pack(2, body, size)) == NULL)
        goto end;
    set_x(exchange, X_FINAL, final);
    failed = 0;
end:
    Py_DECREF(body);
    Py_XDECREF(size);
    Py_XDECREF(fields);
    Py_XDECREF(response);
    Py_XDECREF(made);
    Py_XDECREF(final);
    return failed;
}

/* What an exception of the app's part is to run: an Exception goes to ``_app_failed`` (which may
 * raise in turn), as the exception being handled (what sys.exc_info() and the log's exception()
 * see, as in run's except clause); any other stays set. */
static void
app_failed(PyObject *exchange)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return;
    PyObject *type, *value, *traceback, *outer_type, *outer_value, *outer_traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL)
        PyException_SetTraceback(value, traceback);
    PyErr_GetExcInfo(&outer_type, &outer_value, &outer_traceback);
    PyErr_SetExcInfo(Py_NewRef(type), Py_NewRef(value), Py_XNewRef(traceback));
    done(method(exchange, S_APP_FAILED, &value, 1));
    PyErr_SetExcInfo(outer_type, outer_value, outer_traceback);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
}

/* ``call``'s result as a ``finally`` clause's: an error it raises replaces the one being raised,
 * if any (which it has as its context, as in Python); else that one stays set. */
static void
in_finally(PyObject *(*call)(PyObject *, PyObject *, PyObject *), PyObject *a, PyObject *b, PyObject *c)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (done(call(a, b, c)) == 0) {
        PyErr_Restore(type, value, traceback);
        return;
    }
    if (type != NULL) {
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != NULL)
            PyException_SetTraceback(value, traceback);
        PyObject *ntype, *nvalue, *ntraceback;
        PyErr_Fetch(&ntype, &nvalue, &ntraceback);
        PyErr_NormalizeException(&ntype, &nvalue, &ntraceback);
        PyException_SetContext(nvalue, Py_NewRef(value));
        PyErr_Restore(ntype, nvalue, ntraceback);
        Py_DECREF(type);
        Py_DECREF(value);
        Py_XDECREF(traceback);
    }
}

/* _close(result, wsgi_input, config.log) */
static PyObject *
close_all(PyObject *result, PyObject *wsgi_input, PyObject *config)
{
    PyObject *log = attr(config, S_LOG);
    if (log == NULL)
        return NULL;
    PyObject *args[] = {result, wsgi_input, log};
    PyObject *closed = PyObject_Vectorcall(R.close, args, 3, NULL);
    Py_DECREF(log);
    return closed;
}

/* lease.release(), of the lease the exchange holds at its end, if any */
static PyObject *
release_lease(PyObject *exchange, PyObject *Py_UNUSED(b), PyObject *Py_UNUSED(c))
{
    PyObject *lease = X(exchange, X_LEASE);
    if (lease == Py_None)
        Py_RETURN_NONE;
    Py_INCREF(lease);
    PyObject *released = method(lease, S_RELEASE, NULL, 0);
    Py_DECREF(lease);
    return released;
}

/* _hand_over_final: a whole answer, with nothing handed over before it and no lease to write it
 * through, goes to the loop's answer_exchange; anything else to the method. */
static int
hand_over_final(PyObject *exchange, PyObject *config)
{
    PyObject *final = X(exchange, X_FINAL);
    if (R.answer_exchange == Py_None || !PyTuple_CheckExact(final) || PyTuple_GET_SIZE(final) != 2 ||
        X(exchange, X_ABORTED) != Py_False || X(exchange, X_LEASE) != Py_None || X(exchange, X_BODY) != Py_None)
        return done(method(exchange, S_HAND_OVER_FINAL, NULL, 0));
    PyObject *answers = attr(config, S_ANSWERS);
    if (answers == NULL)
        return -1;
    PyObject *none = Py_None;
    int failed = done(method(answers, S_APPEND, &none, 1));  /* (before the hand-over: see the method) */
    Py_DECREF(answers);
    if (failed)
        return -1;
    Py_INCREF(final);
    set_x(exchange, X_FINAL, Py_None);
    PyObject *args[] = {R.answer_exchange, exchange, PyTuple_GET_ITEM(final, 0), PyTuple_GET_ITEM(final, 1)};
    failed = done(method(X(exchange, X_POOL), S_CALL_IN_LOOP, args, 4));
    Py_DECREF(final);
    return failed;
}

/* run's try, except and finally around the app: 0, or -1 with what it raises set. */
static int
run_app(PyObject *exchange, PyObject *channel, PyObject *head, PyObject *config, PyObject *wsgi_input,
        PyObject *content_length)
{
    PyObject *result = NULL, *environ = NULL, *start_response = NULL, *app = NULL;
    PyObject *forwarded = forwarded_of(channel, head);
    if (forwarded == NULL)
        return -1;  /* (before the try, in run too) */
    if ((environ = environ_of(exchange, head, forwarded, wsgi_input, content_length)) != NULL &&
        (start_response = attr(exchange, S_START_RESPONSE)) != NULL && (app = attr(config, S_APP)) != NULL) {
        PyObject *args[] = {environ, start_response};
        if ((result = PyObject_Vectorcall(app, args, 2, NULL)) != NULL)
            send_result(exchange, channel, head, result);  /* (what it raises: below) */
    }
    if (PyErr_Occurred())
        app_failed(exchange);
    if (wsgi_input != Py_None || result == NULL || !PyList_CheckExact(result))
        in_finally(close_all, result != NULL ? result : Py_None, wsgi_input, config);
    Py_DECREF(forwarded);
    Py_XDECREF(environ);
    Py_XDECREF(start_response);
    Py_XDECREF(app);
    Py_XDECREF(result);
    return PyErr_Occurred() ? -1 : 0;
}

const char run_exchange_doc[] =
    "run_exchange($module, exchange, wsgi_input, content_length, /)\n"
    "--\n"
    "\n"
    "exchange.run(wsgi_input, content_length), compiled: a WSGI request's app thread part (see\n"
    "wsgi/exchange.py).";

PyObject *
run_exchange(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!arguments(nargs, 3, "run_exchange(exchange, wsgi_input, content_length)"))
        return NULL;
    PyObject *exchange = args[0];
    int ours = R.type != NULL && Py_TYPE(exchange) == R.type && slots_set(exchange);
    if (ours && (ours = has_hooks(X(exchange, X_PROTOCOL))) >= 0)
        ours = !ours;
    if (ours < 0)
        return NULL;
    if (!ours)
        return method(exchange, S_RUN, args + 1, 2);
    PyObject *channel = Py_NewRef(X(exchange, X_PROTOCOL)), *head = Py_NewRef(X(exchange, X_HEAD));
    PyObject *config = Py_NewRef(X(exchange, X_CONFIG));
    int failed = run_app(exchange, channel, head, config, args[1], args[2]);
    if (!failed) {
        hand_over_final(exchange, config);  /* (what it raises: the lease is released all the same) */
        in_finally(release_lease, exchange, NULL, NULL);
        failed = PyErr_Occurred() != NULL;
    }
    Py_DECREF(channel);
    Py_DECREF(head);
    Py_DECREF(config);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

const char set_exchange_parts_doc[] =
    "set_exchange_parts($module, exchange_type, build_environ, empty_input, status_line, disconnected, close,\n"
    "                   answer_exchange, /)\n"
    "--\n"
    "\n"
    "Register what run_exchange() reads and calls: wsgi.exchange.WSGIExchange (its slots), build_environ,\n"
    "EMPTY_INPUT, heads.STATUS_LINE, ClientDisconnected, exchange._close and answer_exchange.";

PyObject *
set_exchange_parts(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyType_Check(args[0]) || !PyExceptionClass_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "set_exchange_parts(exchange_type, build_environ, empty_input, "
                                         "status_line, disconnected, close, answer_exchange)");
        return NULL;
    }
    Py_ssize_t slot[N_X];
    if (offsets_of(args[0], SLOTS, N_X, slot) < 0 || interned(NAMES, N_S, R.name) < 0)
        return NULL;
    memcpy(R.slot, slot, sizeof(slot));
    Py_XSETREF(R.build_environ, Py_NewRef(args[1]));
    Py_XSETREF(R.empty_input, Py_NewRef(args[2]));
    Py_XSETREF(R.status_line, Py_NewRef(args[3]));
    Py_XSETREF(R.disconnected, Py_NewRef(args[4]));
    Py_XSETREF(R.close, Py_NewRef(args[5]));
    Py_XSETREF(R.answer_exchange, Py_NewRef(args[6]));
    Py_XSETREF(R.type, (PyTypeObject *)Py_NewRef(args[0]));
    Py_RETURN_NONE;
}
