/* Compiled fast path of the HTTP/1.1 request-head parser (and small helpers: two
 * of the ASGI path over the fields it makes, lower_fields and bytes_pairs, the
 * WSGI environ's fields, environ_fields, and the percent-decoding of urlencoded
 * forms and queries, unquote_plus_ascii); _eager.c adds eager.py's FirstStepAhead, and
 * _answer.c, _dispatch.c and _exchange.c the common paths of a connection compiled: a whole
 * answer's (answer_whole), a bodyless request's dispatch (handle_events) and a WSGI exchange's
 * app thread part (run_exchange), each with its Python methods as its reference.
 *
 * parse_plain_head() is parser.plain_head_py in C: the same grammar (grammar.py's
 * plain_request_line, field_lines and crlf_field_line), the same limit checks and
 * the same result, from one pass over the bytes. It declines (returns None) every
 * head the Python fast path declines, so the full checks, and their precise errors,
 * stay in one place: parser.py. Any difference between the two is a bug; the tests
 * compare them on hand-written, generated and fuzzed heads. request_head() runs that
 * parse and settles a common head at once (what simple_head(), headreader's settling and
 * host.settle_host() decide), declining any other; the parser's general path is its
 * reference (tests/protocol/test_request_head.py).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* T_OBJECT_EX, READONLY: the slots of RequestHead */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "_answer.h"
#include "_eager.h"
#include "_paths.h"

/* Bits of the ``special`` mask: a framing-relevant field sets its bit when it
 * appears and the bit above it when it appears again. parser.py has the same
 * constants; the module exports these so that a test can hold them equal. */
#define SPECIAL_HOST (1 << 0)
#define SPECIAL_CONTENT_LENGTH (1 << 2)
#define SPECIAL_TRANSFER_ENCODING (1 << 4)
#define SPECIAL_CONNECTION (1 << 6)
#define SPECIAL_EXPECT (1 << 8)
#define SPECIAL_UPGRADE (1 << 10)
#define SPECIAL_CONTENT_TYPE (1 << 12)

/* Character classes, built at import from the definitions in grammar.py. */
#define CC_TCHAR 0x01  /* RFC 9110 s5.6.2 tchar */
#define CC_ORIGIN 0x02 /* origin-form: \x21 \x22 \x24-\x7e (no "#") */
#define CC_VALUE 0x04  /* field-value octets and OWS: HTAB SP VCHAR obs-text */

static unsigned char char_class[256];

static void
init_char_classes(void)
{
    static const char tchar_punct[] = "!#$%&'*+-.^_`|~";
    memset(char_class, 0, sizeof(char_class));
    for (int c = 0; c < 256; c++) {
        unsigned char cls = 0;
        if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c != 0 && memchr(tchar_punct, c, sizeof(tchar_punct) - 1) != NULL))
            cls |= CC_TCHAR;
        if (c >= 0x21 && c <= 0x7e && c != '#')
            cls |= CC_ORIGIN;
        if (c == '\t' || (c >= 0x20 && c != 0x7f))
            cls |= CC_VALUE;
        char_class[c] = cls;
    }
}

/* Methods and field names that get one shared str (and bytes) object instead of
 * a new one per request. KNOWN_NAMES must stay sorted by length (checked at import). */
static const char *const METHODS[] = {"GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"};
#define N_METHODS ((int)(sizeof(METHODS) / sizeof(METHODS[0])))

static const char *const KNOWN_NAMES[] = {
    "DNT",
    "Host",
    "host",
    "Accept",
    "Cookie",
    "Expect",
    "Origin",
    "Pragma",
    "accept",
    "cookie",
    "origin",
    "Referer",
    "Upgrade",
    "referer",
    "Priority",
    "priority",
    "X-Real-IP",
    "sec-ch-ua",
    "Connection",
    "User-Agent",
    "connection",
    "user-agent",
    "Content-Type",
    "X-Request-ID",
    "content-type",
    "Authorization",
    "Cache-Control",
    "If-None-Match",
    "authorization",
    "cache-control",
    "Content-Length",
    "Sec-Fetch-Dest",
    "Sec-Fetch-Mode",
    "Sec-Fetch-Site",
    "Sec-Fetch-User",
    "content-length",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
    "Accept-Encoding",
    "Accept-Language",
    "X-Forwarded-For",
    "accept-encoding",
    "accept-language",
    "sec-ch-ua-mobile",
    "If-Modified-Since",
    "Transfer-Encoding",
    "X-Forwarded-Proto",
    "transfer-encoding",
    "sec-ch-ua-platform",
    "Upgrade-Insecure-Requests",
    "upgrade-insecure-requests",
};
#define N_KNOWN ((int)(sizeof(KNOWN_NAMES) / sizeof(KNOWN_NAMES[0])))
#define MAX_KNOWN_LEN 32
#define NAME_SLOTS 256 /* a power of two, well above N_KNOWN */

/* KNOWN_NAMES[known_start[n]:known_start[n + 1]] are the names of length n. */
static int known_start[MAX_KNOWN_LEN + 2];

static int
init_known_index(void)
{
    size_t prev = 0;
    int k = 0;
    for (int n = 0; n <= MAX_KNOWN_LEN + 1; n++) {
        while (k < N_KNOWN && strlen(KNOWN_NAMES[k]) < (size_t)n)
            k++;
        known_start[n] = k;
    }
    for (k = 0; k < N_KNOWN; k++) {
        size_t len = strlen(KNOWN_NAMES[k]);
        if (len < prev || len > MAX_KNOWN_LEN) {
            PyErr_SetString(PyExc_SystemError, "_chead: KNOWN_NAMES is not sorted by length");
            return -1;
        }
        prev = len;
    }
    return 0;
}

/* The fields of events.RequestHead, in the order of its constructor. */
static const char *const HEAD_FIELDS[] = {
    "method", "target", "path", "query", "version", "headers", "raw_headers",
    "keep_alive", "content_length", "chunked", "expect_continue", "upgrade", "has_body",
};
#define N_HEAD_FIELDS ((int)(sizeof(HEAD_FIELDS) / sizeof(HEAD_FIELDS[0])))

/* The strings build_environ() uses, in the order of enum env_string. */
static const char *const ENV_STRINGS[] = {
    "REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "RAW_URI", "SERVER_PROTOCOL", "wsgi.input",
    "CONTENT_LENGTH", "HTTP_HOST", "SCRIPT_NAME", "HTTP/1.0", "HTTP/1.1",
};
enum env_string {
    ENV_REQUEST_METHOD, ENV_PATH_INFO, ENV_QUERY_STRING, ENV_RAW_URI, ENV_SERVER_PROTOCOL, ENV_WSGI_INPUT,
    ENV_CONTENT_LENGTH, ENV_HTTP_HOST, ENV_SCRIPT_NAME, ENV_HTTP_1_0, ENV_HTTP_1_1, N_ENV_STRINGS
};

/* The slots of heads.Head that cached_head() reads and writes, in the order of enum rh_slot. */
static const char *const RH_SLOTS[] = {"sized", "_prefix", "_suffix", "_date", "_bytes"};
enum rh_slot { RH_SIZED, RH_PREFIX, RH_SUFFIX, RH_DATE, RH_BYTES, N_RH_SLOTS };

/* The strings http_scope() uses, in the order of enum scope_string. */
static const char *const SCOPE_STRINGS[] = {
    "asgi", "version", "spec_version", "http_version", "path", "raw_path", "query_string", "root_path",
    "headers", "client", "server", "state", "type", "method", "scheme", "extensions", "http.response.trailers",
    "http.response.pathsend", "http.response.zerocopysend", "http", "1.0", "1.1",
};
enum scope_string {
    SC_ASGI, SC_VERSION, SC_SPEC_VERSION, SC_HTTP_VERSION, SC_PATH, SC_RAW_PATH, SC_QUERY_STRING, SC_ROOT_PATH,
    SC_HEADERS, SC_CLIENT, SC_SERVER, SC_STATE, SC_TYPE, SC_METHOD, SC_SCHEME, SC_EXTENSIONS, SC_TRAILERS,
    SC_PATHSEND, SC_ZEROCOPYSEND, SC_HTTP, SC_HTTP_1_0, SC_HTTP_1_1, N_SCOPE_STRINGS
};

/* The slots of parser.RequestParser that whole_head() reads and writes, in the order of enum parser_slot. */
static const char *const PARSER_SLOTS[] = {"state", "buffer", "_head_size", "_plain_limits"};
enum parser_slot { PARSER_STATE, PARSER_BUFFER, PARSER_HEAD_SIZE, PARSER_PLAIN_LIMITS, N_PARSER_SLOTS };

#define N_SLOT_LAYOUTS 8 /* the types copy_slots() keeps the slot offsets of */

typedef struct {
    PyObject *methods[N_METHODS];
    PyObject *name_str[N_KNOWN];
    PyObject *name_bytes[N_KNOWN];
    PyObject *name_lower[N_KNOWN]; /* each name in lower case: name_bytes of its lower-case entry if any */
    /* open addressing by address: which name_bytes object a field name is (known_object) */
    PyObject *by_address[NAME_SLOTS];
    int by_address_index[NAME_SLOTS];
    /* set by set_head_types(): what simple_head() makes and fills */
    PyTypeObject *head_type;
    PyObject *multidict_type;
    PyObject *versions[2];
    Py_ssize_t head_offsets[N_HEAD_FIELDS];
    /* environ_fields(): its method name, keys and separators */
    PyObject *str_items, *key_content_type, *key_cookie, *sep_cookie, *sep_list;
    /* build_environ(): the keys and values it sets, and what set_environ_parts() gave */
    PyObject *env_strings[N_ENV_STRINGS];
    PyObject *env_keys, *env_key_of, *env_reference;
    /* cached_head(): heads.Head, the offsets of its slots (RH_*), and writer's Date cache */
    PyTypeObject *rh_type;
    Py_ssize_t rh_offsets[N_RH_SLOTS];
    PyObject *date_cache, *http_date, *str_bytes;
    /* whole_head(): parser.RequestParser, the offsets of its slots (PARSER_*), END_OF_MESSAGE,
     * the host cache and the names of the methods it calls */
    PyTypeObject *parser_type;
    Py_ssize_t parser_offsets[N_PARSER_SLOTS];
    long state_head, state_done, state_error;
    PyObject *end_of_message, *valid_hosts, *str_parse_plain_head, *str_start_body, *str_run;
    /* http_scope(): its keys and constant values, and what set_scope_parts() gave */
    PyObject *scope_strings[N_SCOPE_STRINGS];
    PyObject *scope_spec_version, *scope_reference;
    /* copy_slots(): the offsets of the slots each type it copied has (a worker copies a few) */
    struct slot_layout {
        PyTypeObject *type;
        Py_ssize_t count;
        Py_ssize_t *offsets;
    } layouts[N_SLOT_LAYOUTS];
    int n_layouts;
} chead_state;

static inline chead_state *
get_state(PyObject *module)
{
    return (chead_state *)PyModule_GetState(module);
}

/* Index in KNOWN_NAMES of exactly these bytes, or -1. */
static int
known_name(const unsigned char *p, Py_ssize_t n)
{
    if (n > MAX_KNOWN_LEN)
        return -1;
    for (int k = known_start[n]; k < known_start[n + 1]; k++) {
        if ((unsigned char)KNOWN_NAMES[k][0] == p[0] && memcmp(KNOWN_NAMES[k], p, (size_t)n) == 0)
            return k;
    }
    return -1;
}

static inline size_t
address_slot(PyObject *obj)
{
    return ((uintptr_t)obj >> 4) & (NAME_SLOTS - 1);
}

/* Index in KNOWN_NAMES of the name_bytes object ``obj`` itself (the parser's raw names
 * share them), or -1: no bytes to compare. */
static inline int
known_object(const chead_state *st, PyObject *obj)
{
    for (size_t h = address_slot(obj); st->by_address[h] != NULL; h = (h + 1) & (NAME_SLOTS - 1)) {
        if (st->by_address[h] == obj)
            return st->by_address_index[h];
    }
    return -1;
}

static int
method_index(const unsigned char *p, Py_ssize_t n)
{
    for (int k = 0; k < N_METHODS; k++) {
        if (strlen(METHODS[k]) == (size_t)n && memcmp(METHODS[k], p, (size_t)n) == 0)
            return k;
    }
    return -1;
}

static inline unsigned char
ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* p[0:n] equals ``lower`` ignoring ASCII case (``lower`` is lower case). */
static inline int
ascii_ci_equal(const unsigned char *p, const char *lower, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ascii_lower(p[i]) != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

/* The SPECIAL_* bit of a field name, or 0. The seven names have distinct lengths. */
static inline int
special_bit(const unsigned char *p, Py_ssize_t n)
{
    switch (n) {
    case 4:
        return ascii_ci_equal(p, "host", 4) ? SPECIAL_HOST : 0;
    case 6:
        return ascii_ci_equal(p, "expect", 6) ? SPECIAL_EXPECT : 0;
    case 7:
        return ascii_ci_equal(p, "upgrade", 7) ? SPECIAL_UPGRADE : 0;
    case 10:
        return ascii_ci_equal(p, "connection", 10) ? SPECIAL_CONNECTION : 0;
    case 12:
        return ascii_ci_equal(p, "content-type", 12) ? SPECIAL_CONTENT_TYPE : 0;
    case 14:
        return ascii_ci_equal(p, "content-length", 14) ? SPECIAL_CONTENT_LENGTH : 0;
    case 17:
        return ascii_ci_equal(p, "transfer-encoding", 17) ? SPECIAL_TRANSFER_ENCODING : 0;
    default:
        return 0;
    }
}

/* Where the field-value octets from s[i] on stop being whole 8-byte words of SP, VCHAR
 * and obs-text: the byte loop after it takes the rest (an HTAB, the CR, anything else).
 * A word passes when none of its bytes is below 0x20 or 0x7f (the word tests of "Bit
 * Twiddling Hacks": never a miss; a false alarm only hands the word to the byte loop). */
static inline Py_ssize_t
skip_value_words(const unsigned char *s, Py_ssize_t i, Py_ssize_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (n - i >= 8) {
        uint64_t x, del;
        memcpy(&x, s + i, 8);
        del = x ^ (ones * 0x7f);
        if ((((x - ones * 0x20) & ~x) | ((del - ones) & ~del)) & highs)
            break;
        i += 8;
    }
    return i;
}

/* A str from bytes already checked to be ASCII. */
static PyObject *
ascii_str(const unsigned char *p, Py_ssize_t n)
{
    PyObject *s = PyUnicode_New(n, 127);
    if (s != NULL && n > 0)
        memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)n);
    return s;
}

/* A limit argument as Py_ssize_t; ints beyond its range clamp (they compare the same). */
static int
limit_arg(PyObject *obj, Py_ssize_t *out)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0 || v > PY_SSIZE_T_MAX)
        *out = PY_SSIZE_T_MAX;
    else if (overflow < 0 || v < PY_SSIZE_T_MIN)
        *out = PY_SSIZE_T_MIN;
    else
        *out = (Py_ssize_t)v;
    return 0;
}

typedef struct {
    Py_ssize_t name, name_len, value, value_len;
} field_span;

#define STACK_FIELDS 64

/* Build the result tuple from a checked head; NULL with an exception set on failure. */
static PyObject *
build_result(chead_state *st, const unsigned char *s, Py_ssize_t method_len, Py_ssize_t target_start,
             Py_ssize_t target_end, Py_ssize_t query_at, int minor, const field_span *spans,
             Py_ssize_t count, int special)
{
    PyObject *method = NULL, *target = NULL, *path = NULL, *query = NULL, *minor_obj = NULL;
    PyObject *raw = NULL, *pairs = NULL, *special_obj = NULL, *result = NULL;

    int m = method_index(s, method_len);
    method = m >= 0 ? Py_NewRef(st->methods[m]) : ascii_str(s, method_len);
    target = ascii_str(s + target_start, target_end - target_start);
    if (method == NULL || target == NULL)
        goto error;
    if (query_at < 0) {
        path = Py_NewRef(target);
        query = ascii_str(s, 0);
    }
    else {
        path = ascii_str(s + target_start, query_at - target_start);
        query = ascii_str(s + query_at + 1, target_end - query_at - 1);
    }
    minor_obj = PyLong_FromLong(minor);
    special_obj = PyLong_FromLong(special);
    raw = PyList_New(count);
    pairs = PyList_New(count);
    if (path == NULL || query == NULL || minor_obj == NULL || special_obj == NULL || raw == NULL ||
        pairs == NULL)
        goto error;

    for (Py_ssize_t i = 0; i < count; i++) {
        const unsigned char *name = s + spans[i].name;
        const unsigned char *value = s + spans[i].value;
        Py_ssize_t name_len = spans[i].name_len, value_len = spans[i].value_len;
        PyObject *name_b, *name_s, *value_b, *value_s, *raw_item, *pair;
        int k = known_name(name, name_len);
        if (k >= 0) {
            name_b = Py_NewRef(st->name_bytes[k]);
            name_s = Py_NewRef(st->name_str[k]);
        }
        else {
            name_b = PyBytes_FromStringAndSize((const char *)name, name_len);
            name_s = ascii_str(name, name_len);
        }
        value_b = PyBytes_FromStringAndSize((const char *)value, value_len);
        value_s = PyUnicode_DecodeLatin1((const char *)value, value_len, NULL);
        raw_item = PyTuple_New(2);
        pair = PyTuple_New(2);
        if (name_b == NULL || name_s == NULL || value_b == NULL || value_s == NULL || raw_item == NULL ||
            pair == NULL) {
            Py_XDECREF(name_b);
            Py_XDECREF(name_s);
            Py_XDECREF(value_b);
            Py_XDECREF(value_s);
            Py_XDECREF(raw_item);
            Py_XDECREF(pair);
            goto error;
        }
        PyTuple_SET_ITEM(raw_item, 0, name_b);
        PyTuple_SET_ITEM(raw_item, 1, value_b);
        PyTuple_SET_ITEM(pair, 0, name_s);
        PyTuple_SET_ITEM(pair, 1, value_s);
        PyList_SET_ITEM(raw, i, raw_item);
        PyList_SET_ITEM(pairs, i, pair);
    }

    result = PyTuple_New(8);
    if (result == NULL)
        goto error;
    PyTuple_SET_ITEM(result, 0, method);
    PyTuple_SET_ITEM(result, 1, target);
    PyTuple_SET_ITEM(result, 2, path);
    PyTuple_SET_ITEM(result, 3, query);
    PyTuple_SET_ITEM(result, 4, minor_obj);
    PyTuple_SET_ITEM(result, 5, raw);
    PyTuple_SET_ITEM(result, 6, pairs);
    PyTuple_SET_ITEM(result, 7, special_obj);
    return result;

error:
    /* Lists made by PyList_New hold NULL in the slots not yet filled; dealloc skips them. */
    Py_XDECREF(method);
    Py_XDECREF(target);
    Py_XDECREF(path);
    Py_XDECREF(query);
    Py_XDECREF(minor_obj);
    Py_XDECREF(special_obj);
    Py_XDECREF(raw);
    Py_XDECREF(pairs);
    return NULL;
}

static PyObject *plain_parse(chead_state *st, const unsigned char *s, const Py_ssize_t n,
                             Py_ssize_t request_line_limit, Py_ssize_t field_size_limit,
                             Py_ssize_t fields_limit);

PyDoc_STRVAR(parse_plain_head_doc,
"parse_plain_head($module, head, request_line, field_size, fields, /)\n"
"--\n"
"\n"
"Parse a common request head: (method, target, path, query, minor, raw, pairs,\n"
"special), or None for any head the full checks must judge (see parser.plain_head_py).");

static PyObject *
parse_plain_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t request_line_limit, field_size_limit, fields_limit;

    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "parse_plain_head expected 4 arguments, got %zd", nargs);
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "parse_plain_head() argument 1 must be bytes, not %.200s",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    if (limit_arg(args[1], &request_line_limit) < 0 || limit_arg(args[2], &field_size_limit) < 0 ||
        limit_arg(args[3], &fields_limit) < 0)
        return NULL;
    return plain_parse(get_state(module), (const unsigned char *)PyBytes_AS_STRING(args[0]),
                       PyBytes_GET_SIZE(args[0]), request_line_limit, field_size_limit, fields_limit);
}

/* parse_plain_head() of s[0:n]: a new reference to its 8-tuple or to None (declined), or
 * NULL with an exception set. */
static PyObject *
plain_parse(chead_state *st, const unsigned char *s, const Py_ssize_t n, Py_ssize_t request_line_limit,
            Py_ssize_t field_size_limit, Py_ssize_t fields_limit)
{
    Py_ssize_t i = 0;

    /* request-line = method SP origin-form SP "HTTP/1." ("0" / "1"), then CRLF or the end */
    while (i < n && (char_class[s[i]] & CC_TCHAR))
        i++;
    const Py_ssize_t method_len = i;
    if (method_len == 0 || n - i < 2 || s[i] != ' ' || s[i + 1] != '/')
        Py_RETURN_NONE;
    i++;
    const Py_ssize_t target_start = i;
    Py_ssize_t query_at = -1;
    i++; /* the "/" */
    while (i < n && (char_class[s[i]] & CC_ORIGIN)) {
        if (s[i] == '?' && query_at < 0)
            query_at = i;
        i++;
    }
    const Py_ssize_t target_end = i;
    if (n - i < 9 || memcmp(s + i, " HTTP/1.", 8) != 0 || (s[i + 8] != '0' && s[i + 8] != '1'))
        Py_RETURN_NONE;
    const int minor = s[i + 8] - '0';
    i += 9;
    const Py_ssize_t line_end = i;
    if (line_end > request_line_limit || n - line_end > field_size_limit)
        Py_RETURN_NONE;
    if (method_len == 7 && memcmp(s, "CONNECT", 7) == 0)
        Py_RETURN_NONE;

    /* *( CRLF field-name ":" OWS field-value OWS ) to the end */
    field_span stack_spans[STACK_FIELDS];
    field_span *spans = stack_spans;
    Py_ssize_t cap = STACK_FIELDS, count = 0;
    int special = 0;
    PyObject *result = NULL;

    while (i < n) {
        if (n - i < 2 || s[i] != '\r' || s[i + 1] != '\n')
            goto decline;
        i += 2;
        const Py_ssize_t name = i;
        while (i < n && (char_class[s[i]] & CC_TCHAR))
            i++;
        if (i == name || i >= n || s[i] != ':')
            goto decline;
        const Py_ssize_t name_len = i - name;
        i++;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        const Py_ssize_t value = i;
        i = skip_value_words(s, i, n);
        while (i < n && (char_class[s[i]] & CC_VALUE))
            i++;
        Py_ssize_t value_end = i;
        while (value_end > value && (s[value_end - 1] == ' ' || s[value_end - 1] == '\t'))
            value_end--;
        /* Whatever stopped the value must be the next CRLF (checked at the loop's top). */

        if (count >= fields_limit)
            goto decline;
        if (count == cap) {
            field_span *grown;
            if (cap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(field_span)) {
                PyErr_NoMemory();
                goto done;
            }
            if (spans == stack_spans) {
                grown = PyMem_Malloc((size_t)(cap * 2) * sizeof(field_span));
                if (grown != NULL)
                    memcpy(grown, stack_spans, sizeof(stack_spans));
            }
            else {
                grown = PyMem_Realloc(spans, (size_t)(cap * 2) * sizeof(field_span));
            }
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            spans = grown;
            cap *= 2;
        }
        spans[count].name = name;
        spans[count].name_len = name_len;
        spans[count].value = value;
        spans[count].value_len = value_end - value;
        count++;

        int bit = special_bit(s + name, name_len);
        special |= bit | ((special & bit) << 1);
    }
    if (count > fields_limit)
        goto decline;

    result = build_result(st, s, method_len, target_start, target_end, query_at, minor, spans, count,
                          special);
    goto done;

decline:
    result = Py_NewRef(Py_None);
done:
    if (spans != stack_spans)
        PyMem_Free(spans);
    return result;
}

/* -- the RequestHead of a simple plain head ---------------------------------- */

static PyObject *head_of_plain(chead_state *st, PyObject *plain, int minor, int keep_alive,
                               long long content_length);

/* The offset of ``name``, a writable object slot of ``type``; -1 with TypeError set if it is not one. */
Py_ssize_t
object_slot_offset(PyObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString(type, name);
    Py_ssize_t offset = -1;
    if (descr == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
    }
    else if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == T_OBJECT_EX && !(member->flags & READONLY))
            offset = member->offset;
    }
    Py_XDECREF(descr);
    if (offset < 0)
        PyErr_Format(PyExc_TypeError, "%s is not a writable slot of its type", name);
    return offset;
}

PyDoc_STRVAR(set_head_types_doc,
"set_head_types($module, head_type, multidict_type, versions, /)\n"
"--\n"
"\n"
"Register what simple_head() makes: the RequestHead class (a slots dataclass whose\n"
"__init__ only stores its fields, in HEAD_FIELDS order), CIMultiDict, and the two\n"
"version tuples ((1, 0), (1, 1)).");

static PyObject *
set_head_types(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    Py_ssize_t offsets[N_HEAD_FIELDS];

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "set_head_types expected 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (!PyType_Check(args[0]) || !PyCallable_Check(args[1]) || !PyTuple_CheckExact(args[2]) ||
        PyTuple_GET_SIZE(args[2]) != 2) {
        PyErr_SetString(PyExc_TypeError, "set_head_types(head_type, multidict_type, (v1_0, v1_1))");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    if (PyObject_HasAttrString(args[0], "__post_init__")) {
        PyErr_SetString(PyExc_TypeError, "set_head_types: the head type must not have __post_init__");
        return NULL;
    }
    for (int i = 0; i < N_HEAD_FIELDS; i++) {
        if ((offsets[i] = object_slot_offset(args[0], HEAD_FIELDS[i])) < 0)
            return NULL;
    }
    Py_XSETREF(st->head_type, (PyTypeObject *)Py_NewRef(type));
    Py_XSETREF(st->multidict_type, Py_NewRef(args[1]));
    Py_XSETREF(st->versions[0], Py_NewRef(PyTuple_GET_ITEM(args[2], 0)));
    Py_XSETREF(st->versions[1], Py_NewRef(PyTuple_GET_ITEM(args[2], 1)));
    memcpy(st->head_offsets, offsets, sizeof(offsets));
    Py_RETURN_NONE;
}

PyDoc_STRVAR(simple_head_doc,
"simple_head($module, plain, /)\n"
"--\n"
"\n"
"The RequestHead of a parse_plain_head() result whose fields hold one Host and none\n"
"that bears on framing: what parser.simple_head_py makes, without running Python code\n"
"but CIMultiDict's.");

static PyObject *
simple_head(PyObject *module, PyObject *plain)
{
    chead_state *st = get_state(module);
    if (st->head_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "simple_head: set_head_types() was not called");
        return NULL;
    }
    if (!PyTuple_CheckExact(plain) || PyTuple_GET_SIZE(plain) != 8) {
        PyErr_SetString(PyExc_TypeError, "simple_head() takes the 8-tuple of parse_plain_head()");
        return NULL;
    }
    long minor = PyLong_AsLong(PyTuple_GET_ITEM(plain, 4));
    if (minor == -1 && PyErr_Occurred())
        return NULL;
    if (minor != 0 && minor != 1) {
        PyErr_SetString(PyExc_ValueError, "simple_head(): the minor version must be 0 or 1");
        return NULL;
    }
    /* What _build_head decides for one Host and no framing fields: keep-alive for
     * HTTP/1.1, Content-Length 0, not chunked, no 100-continue, no upgrade, no body. */
    return head_of_plain(st, plain, (int)minor, minor == 1, 0);
}

/* The RequestHead of a checked 8-tuple of parse_plain_head() (minor 0 or 1): not chunked,
 * no 100-continue, no upgrade, ``keep_alive``, ``content_length`` (a body when above 0).
 * Needs set_head_types(). */
static PyObject *
head_of_plain(chead_state *st, PyObject *plain, int minor, int keep_alive, long long content_length)
{
    PyObject *length = PyLong_FromLongLong(content_length);
    if (length == NULL)
        return NULL;
    PyObject *headers = PyObject_CallOneArg(st->multidict_type, PyTuple_GET_ITEM(plain, 6));
    if (headers == NULL) {
        Py_DECREF(length);
        return NULL;
    }
    PyObject *head = st->head_type->tp_alloc(st->head_type, 0);
    if (head == NULL) {
        Py_DECREF(headers);
        Py_DECREF(length);
        return NULL;
    }
    PyObject *values[N_HEAD_FIELDS] = {
        PyTuple_GET_ITEM(plain, 0), PyTuple_GET_ITEM(plain, 1), PyTuple_GET_ITEM(plain, 2),
        PyTuple_GET_ITEM(plain, 3), st->versions[minor], headers, PyTuple_GET_ITEM(plain, 5),
        keep_alive ? Py_True : Py_False, length, Py_False, Py_False, Py_False,
        content_length > 0 ? Py_True : Py_False,
    };
    for (int i = 0; i < N_HEAD_FIELDS; i++)
        *(PyObject **)((char *)head + st->head_offsets[i]) = Py_NewRef(values[i]);
    Py_DECREF(headers);
    Py_DECREF(length);
    return head;
}

/* The framing-relevant fields that need the full checks (parser.NEEDS_CHECKS). */
#define NEEDS_CHECKS                                                                                     \
    (SPECIAL_HOST * 3 | SPECIAL_CONTENT_LENGTH * 3 | SPECIAL_TRANSFER_ENCODING * 3 |                     \
     SPECIAL_CONNECTION * 3 | SPECIAL_EXPECT * 3 | SPECIAL_CONTENT_TYPE * 2)
#define MAX_CL_DIGITS 18 /* framing._MAX_CL_DIGITS */

/* A Content-Length value's size: ASCII digits only, 1 to MAX_CL_DIGITS of them; -1 for
 * any other value (the general path then refuses it). */
static long long
content_length_value(PyObject *value)
{
    if (!PyUnicode_Check(value) || PyUnicode_KIND(value) != PyUnicode_1BYTE_KIND)
        return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(value);
    const Py_UCS1 *p = PyUnicode_1BYTE_DATA(value);
    if (n < 1 || n > MAX_CL_DIGITS)
        return -1;
    long long length = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        length = length * 10 + (p[i] - '0');
    }
    return length;
}

/* What headreader._settle_connection decides of a simple head's one Connection value
 * without a token set: 1 keep-alive, 0 close, -1 any other value (the general path). */
static int
connection_value(PyObject *value)
{
    if (!PyUnicode_Check(value))
        return -1;
    if (PyUnicode_CompareWithASCIIString(value, "keep-alive") == 0 ||
        PyUnicode_CompareWithASCIIString(value, "Keep-Alive") == 0)
        return 1;
    if (PyUnicode_CompareWithASCIIString(value, "close") == 0 ||
        PyUnicode_CompareWithASCIIString(value, "Close") == 0)
        return 0;
    return -1;
}

PyDoc_STRVAR(request_head_doc,
"request_head($module, data, end, limits, valid_hosts, /)\n"
"--\n"
"\n"
"The settled RequestHead of the head data[:end] when it is a common one: plain, one Host\n"
"whose value is a key of valid_hosts (host.py's values already checked), at most one\n"
"Content-Length of digits and one Connection of keep-alive or close, no other field that\n"
"bears on framing; limits: (request_line, field_size, fields). None for any other head:\n"
"the parser's general path then takes it as if this shortcut did not exist, and the two\n"
"must agree on every head this one answers.");

static PyObject *common_head(chead_state *st, const unsigned char *s, Py_ssize_t end, const Py_ssize_t limits[3],
                             PyObject *valid_hosts);

static PyObject *
request_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    Py_ssize_t end, limits[3];

    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "request_head expected 4 arguments, got %zd", nargs);
        return NULL;
    }
    if (!PyBytes_Check(args[0]) || !PyTuple_CheckExact(args[2]) || PyTuple_GET_SIZE(args[2]) != 3 ||
        !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "request_head(data: bytes, end: int, limits: 3-tuple, valid_hosts: dict)");
        return NULL;
    }
    if (limit_arg(args[1], &end) < 0)
        return NULL;
    for (int k = 0; k < 3; k++) {
        if (limit_arg(PyTuple_GET_ITEM(args[2], k), &limits[k]) < 0)
            return NULL;
    }
    if (end < 0 || end > PyBytes_GET_SIZE(args[0])) {
        PyErr_SetString(PyExc_ValueError, "request_head(): end is outside the data");
        return NULL;
    }
    if (st->head_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "request_head: set_head_types() was not called");
        return NULL;
    }
    return common_head(st, (const unsigned char *)PyBytes_AS_STRING(args[0]), end, limits, args[3]);
}

/* request_head() of checked arguments: the head of s[:end], None (declined) or NULL (raised). */
static PyObject *
common_head(chead_state *st, const unsigned char *s, Py_ssize_t end, const Py_ssize_t limits[3],
            PyObject *valid_hosts)
{
    PyObject *plain = plain_parse(st, s, end, limits[0], limits[1], limits[2]);
    if (plain == NULL || plain == Py_None)
        return plain;
    PyObject *head = NULL;
    long special = PyLong_AsLong(PyTuple_GET_ITEM(plain, 7)) & NEEDS_CHECKS;
    int minor = (int)PyLong_AsLong(PyTuple_GET_ITEM(plain, 4)); /* (0 or 1: small ints) */
    if ((special & ~(SPECIAL_CONTENT_LENGTH | SPECIAL_CONNECTION)) != SPECIAL_HOST)
        goto decline; /* (one of each at most: their second bits are in the mask) */
    PyObject *raw = PyTuple_GET_ITEM(plain, 5), *pairs = PyTuple_GET_ITEM(plain, 6);
    PyObject *host = NULL, *length = NULL, *connection = NULL; /* borrowed values */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(raw); i++) {
        PyObject *name = PyTuple_GET_ITEM(PyList_GET_ITEM(raw, i), 0);
        PyObject *value = PyTuple_GET_ITEM(PyList_GET_ITEM(pairs, i), 1);
        switch (special_bit((const unsigned char *)PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name))) {
        case SPECIAL_HOST:
            host = value;
            break;
        case SPECIAL_CONTENT_LENGTH:
            length = value;
            break;
        case SPECIAL_CONNECTION:
            connection = value;
            break;
        }
    }
    int known = host == NULL ? 0 : PyDict_Contains(valid_hosts, host);
    if (known <= 0) {
        if (known < 0)
            goto done;
        goto decline;
    }
    int keep_alive = minor == 1;
    if (connection != NULL && (keep_alive = connection_value(connection)) < 0)
        goto decline;
    long long size = length == NULL ? 0 : content_length_value(length);
    if (size < 0)
        goto decline;
    head = head_of_plain(st, plain, minor, keep_alive, size);
    goto done;

decline:
    head = Py_NewRef(Py_None);
done:
    Py_DECREF(plain);
    return head;
}

PyDoc_STRVAR(set_name_type_doc,
"set_name_type($module, name_type, /)\n"
"--\n"
"\n"
"Make the decoded names of the common fields name_type(name) once, for every head:\n"
"multidict's istr, whose case-folded form and hash CIMultiDict then reuses instead of\n"
"computing them per field. name_type must make a str (subclass) equal to its argument.");

static PyObject *
set_name_type(PyObject *module, PyObject *name_type)
{
    chead_state *st = get_state(module);
    PyObject *made[N_KNOWN];
    for (int k = 0; k < N_KNOWN; k++) {
        PyObject *name = PyObject_CallOneArg(name_type, st->name_str[k]);
        if (name != NULL && (!PyUnicode_Check(name) || PyUnicode_Compare(name, st->name_str[k]) != 0)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "set_name_type: name_type(name) must be a str equal to name");
            Py_CLEAR(name);
        }
        if (name == NULL) {
            for (int j = 0; j < k; j++)
                Py_DECREF(made[j]);
            return NULL;
        }
        made[k] = name;
    }
    for (int k = 0; k < N_KNOWN; k++)
        Py_SETREF(st->name_str[k], made[k]);
    Py_RETURN_NONE;
}

/* -- helpers of the ASGI path ---------------------------------------------- */

/* ``name`` (bytes) in ASCII lower case: the shared object of a common name (found by its
 * address when it is one of the parser's, else by its lowered bytes), ``name`` itself
 * when it has no upper case, or a new object. */
static PyObject *
lowered_name(const chead_state *st, PyObject *name)
{
    int known = known_object(st, name);
    if (known >= 0)
        return Py_NewRef(st->name_lower[known]);
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(name);
    const Py_ssize_t n = PyBytes_GET_SIZE(name);
    Py_ssize_t j = 0;
    while (j < n && ascii_lower(p[j]) == p[j])
        j++;
    if (j == n)
        return Py_NewRef(name);
    PyObject *lower = PyBytes_FromStringAndSize(NULL, n);
    if (lower == NULL)
        return NULL;
    unsigned char *q = (unsigned char *)PyBytes_AS_STRING(lower);
    for (Py_ssize_t k = 0; k < n; k++)
        q[k] = ascii_lower(p[k]);
    known = known_name(q, n);
    if (known >= 0) {
        Py_DECREF(lower);
        return Py_NewRef(st->name_bytes[known]);
    }
    return lower;
}

PyDoc_STRVAR(lower_fields_doc,
"lower_fields($module, raw, /)\n"
"--\n"
"\n"
"The (name, value) bytes pairs of ``raw`` (a list of 2-tuples of bytes) with each\n"
"name in ASCII lower case: the ASGI scope's headers (see asgi.fields.lower_fields_py).");

static PyObject *
lower_fields(PyObject *module, PyObject *raw)
{
    chead_state *st = get_state(module);
    if (!PyList_CheckExact(raw)) {
        PyErr_Format(PyExc_TypeError, "lower_fields() argument must be list, not %.200s",
                     Py_TYPE(raw)->tp_name);
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(raw);
    PyObject *result = PyList_New(count);
    if (result == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(raw, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(item, 0))) {
            PyErr_SetString(PyExc_TypeError, "lower_fields() items must be (bytes, value) pairs");
            goto error;
        }
        PyObject *name = PyTuple_GET_ITEM(item, 0);
        PyObject *lower = lowered_name(st, name);
        if (lower == NULL)
            goto error;
        if (lower == name) { /* already lower case: the pair itself (a tuple: nothing can change it) */
            Py_DECREF(lower);
            PyList_SET_ITEM(result, i, Py_NewRef(item));
            continue;
        }
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(lower);
            goto error;
        }
        PyTuple_SET_ITEM(pair, 0, lower);
        PyTuple_SET_ITEM(pair, 1, Py_NewRef(PyTuple_GET_ITEM(item, 1)));
        PyList_SET_ITEM(result, i, pair);
    }
    return result;

error:
    Py_DECREF(result);
    return NULL;
}

PyDoc_STRVAR(bytes_pairs_doc,
"bytes_pairs($module, headers, /)\n"
"--\n"
"\n"
"``headers`` as a tuple of (name, value) tuples if it is a list or tuple of\n"
"two-item lists or tuples of bytes (exactly), else None (see asgi.fields.bytes_pairs_py).");

/* 1: a tuple of two exact bytes; 2: a list of two; 0: anything else. Allocates nothing. */
static int
bytes_pair_kind(PyObject *item)
{
    PyObject *const *pair;
    int kind;
    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
        pair = &PyTuple_GET_ITEM(item, 0);
        kind = 1;
    }
    else if (PyList_CheckExact(item) && PyList_GET_SIZE(item) == 2) {
        pair = PySequence_Fast_ITEMS(item);
        kind = 2;
    }
    else {
        return 0;
    }
    return PyBytes_CheckExact(pair[0]) && PyBytes_CheckExact(pair[1]) ? kind : 0;
}

static PyObject *
bytes_pairs(PyObject *Py_UNUSED(module), PyObject *headers)
{
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers))
        Py_RETURN_NONE;
    /* First a pass that allocates nothing, so no Python code (a finalizer run by the
     * GC) can change the list under it. */
    Py_ssize_t count = PySequence_Fast_GET_SIZE(headers);
    PyObject **items = PySequence_Fast_ITEMS(headers);
    int all_tuples = 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        int kind = bytes_pair_kind(items[i]);
        if (kind == 0)
            Py_RETURN_NONE;
        if (kind == 2)
            all_tuples = 0;
    }
    if (all_tuples) /* the common case: the pairs are the key as they are */
        return PyTuple_CheckExact(headers) ? Py_NewRef(headers) : PyList_AsTuple(headers);

    /* Some pairs are lists: made into tuples from a snapshot, each checked again as it
     * is taken (allocating may run Python code that changes a pair). */
    PyObject *seq = PySequence_Tuple(headers);
    if (seq == NULL)
        return NULL;
    count = PyTuple_GET_SIZE(seq);
    PyObject *result = PyTuple_New(count);
    if (result == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(seq, i);
        int kind = bytes_pair_kind(item);
        if (kind == 0) {
            Py_DECREF(seq);
            Py_DECREF(result);
            Py_RETURN_NONE;
        }
        if (kind == 1) {
            PyTuple_SET_ITEM(result, i, Py_NewRef(item));
            continue;
        }
        PyObject *name = Py_NewRef(PyList_GET_ITEM(item, 0));
        PyObject *value = Py_NewRef(PyList_GET_ITEM(item, 1));
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(name);
            Py_DECREF(value);
            Py_DECREF(seq);
            Py_DECREF(result);
            return NULL;
        }
        PyTuple_SET_ITEM(pair, 0, name);
        PyTuple_SET_ITEM(pair, 1, value);
        PyTuple_SET_ITEM(result, i, pair);
    }
    Py_DECREF(seq);
    return result;
}

PyDoc_STRVAR(unquote_plus_ascii_doc,
"unquote_plus_ascii($module, text, /)\n"
"--\n"
"\n"
"The bytes of an ASCII ``text`` with \"+\" as a space and each %XX escape decoded\n"
"(a \"%\" not followed by two hex digits stays as it is); None if ``text`` is not\n"
"ASCII (see web.urlencoded.unquote_plus_ascii_py).");

static int
hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static PyObject *
unquote_plus_ascii(PyObject *Py_UNUSED(module), PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "unquote_plus_ascii() takes a str");
        return NULL;
    }
    if (PyUnicode_READY(text) < 0)
        return NULL;
    if (!PyUnicode_IS_ASCII(text))
        Py_RETURN_NONE;
    const unsigned char *in = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyBytes_FromStringAndSize(NULL, size); /* (decoding only shortens) */
    if (out == NULL)
        return NULL;
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char *start = w;
    for (Py_ssize_t i = 0; i < size; i++) {
        unsigned char c = in[i];
        if (c == '+') {
            c = ' ';
        }
        else if (c == '%' && i + 2 < size) {
            int hi = hex_digit(in[i + 1]), lo = hi < 0 ? -1 : hex_digit(in[i + 2]);
            if (lo >= 0) {
                c = (unsigned char)(hi << 4 | lo);
                i += 2;
            }
        }
        *w++ = c;
    }
    if (_PyBytes_Resize(&out, w - start) < 0)
        return NULL;
    return out;
}

/* A descriptor argument as an int: OSError (EBADF) for one that cannot be a descriptor. */
static int
fd_arg(PyObject *obj, int *fd)
{
    long v = PyLong_AsLong(obj); /* (not _PyLong_AsInt: gone from Python 3.13) */
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > INT_MAX) {
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *fd = (int)v;
    return 0;
}

/* send(2) of ``data`` on the non-blocking socket ``fd`` with ``flags``, the GIL held: the
 * bytes the socket took, or NULL with OSError set (BlockingIOError when it takes none). */
static PyObject *
send_with(const char *name, PyObject *const *args, Py_ssize_t nargs, int flags)
{
    if (nargs != 2 || !PyLong_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "%s() takes a descriptor and bytes", name);
        return NULL;
    }
    int fd;
    if (fd_arg(args[0], &fd) < 0)
        return NULL;
    ssize_t n;
    do {
        n = send(fd, PyBytes_AS_STRING(args[1]), (size_t)PyBytes_GET_SIZE(args[1]),
                 MSG_DONTWAIT | MSG_NOSIGNAL | flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromSsize_t(n);
}

PyDoc_STRVAR(send_now_doc,
"send_now(fd, data) -> int\n\n"
"os.write(fd, data) for a non-blocking socket, without letting go of the GIL: the\n"
"bytes the socket took (raises OSError as os.write does, BlockingIOError when it\n"
"takes none). An app thread writing a whole response (lease.py) then does not wait\n"
"for the GIL again behind the busy loop thread; the write never blocks.");

static PyObject *
send_now(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    return send_with("send_now", args, nargs, 0);
}

PyDoc_STRVAR(send_last_doc,
"send_last(fd, data) -> int\n\n"
"send_now() of the last bytes before the socket is closed: sent with MSG_MORE, so\n"
"TCP holds them, and when the socket took them all its write side is shut at once,\n"
"which puts the FIN in their segment (see cork.py's send_last_py, the reference).");

PyObject *
send_last(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *sent = send_with("send_last", args, nargs, MSG_MORE);
    if (sent != NULL && PyLong_AsSsize_t(sent) == PyBytes_GET_SIZE(args[1]))
        (void)shutdown((int)PyLong_AsLong(args[0]), SHUT_WR); /* (a reset client: its transport learns) */
    return sent;
}

PyDoc_STRVAR(environ_fields_doc,
"environ_fields($module, environ, headers, keys, key_of, forwarder_fields, /)\n"
"--\n"
"\n"
"Add the fields of ``headers`` (a multidict) to the WSGI ``environ`` under their keys\n"
"(see wsgi.environ.environ_fields_py, the reference).");

static PyObject *
environ_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "environ_fields() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *environ = args[0], *keys = args[2], *key_of = args[3], *forwarder_fields = args[4];
    if (!PyDict_CheckExact(environ) || !PyDict_CheckExact(keys)) {
        PyErr_SetString(PyExc_TypeError, "environ_fields() environ and keys must be dicts");
        return NULL;
    }
    PyObject *items = PyObject_CallMethodNoArgs(args[1], st->str_items);
    if (items == NULL)
        return NULL;
    PyObject *it = PyObject_GetIter(items);
    Py_DECREF(items);
    if (it == NULL)
        return NULL;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        PyObject *key = NULL, *joined = NULL;
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "environ_fields() items must be (name, value) pairs");
            goto item_error;
        }
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        key = PyDict_GetItemWithError(keys, name);
        if (key != NULL)
            Py_INCREF(key);
        else if (PyErr_Occurred() || (key = PyObject_CallFunctionObjArgs(key_of, name, forwarder_fields, NULL)) == NULL)
            goto item_error;
        int passed = PyObject_IsTrue(key);
        if (passed < 0)
            goto item_error;
        if (passed) {
            PyObject *old = PyDict_GetItemWithError(environ, key);
            if (old == NULL && PyErr_Occurred())
                goto item_error;
            if (old != NULL) {
                int cmp = PyObject_RichCompareBool(key, st->key_content_type, Py_EQ);
                if (cmp < 0)
                    goto item_error;
                if (!cmp) {
                    cmp = PyObject_RichCompareBool(key, st->key_cookie, Py_EQ);
                    if (cmp < 0)
                        goto item_error;
                    PyObject *start = PyNumber_Add(old, cmp ? st->sep_cookie : st->sep_list);
                    if (start == NULL)
                        goto item_error;
                    joined = PyNumber_Add(start, value);
                    Py_DECREF(start);
                    if (joined == NULL)
                        goto item_error;
                    value = joined;
                }
            }
            if (PyDict_SetItem(environ, key, value) < 0)
                goto item_error;
        }
        Py_XDECREF(joined);
        Py_DECREF(key);
        Py_DECREF(item);
        continue;
    item_error:
        Py_XDECREF(joined);
        Py_XDECREF(key);
        Py_DECREF(item);
        Py_DECREF(it);
        return NULL;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(set_environ_parts_doc,
"set_environ_parts($module, keys, key_of, reference, /)\n"
"--\n"
"\n"
"Register what build_environ() passes to environ_fields() (the dict of environ keys by\n"
"field name, and the function that makes a missing one) and the Python build_environ it\n"
"hands the uncommon requests to.");

static PyObject *
set_environ_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    if (nargs != 3 || !PyDict_CheckExact(args[0]) || !PyCallable_Check(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "set_environ_parts(keys: dict, key_of, reference)");
        return NULL;
    }
    Py_XSETREF(st->env_keys, Py_NewRef(args[0]));
    Py_XSETREF(st->env_key_of, Py_NewRef(args[1]));
    Py_XSETREF(st->env_reference, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

/* A field of a RequestHead by its index in HEAD_FIELDS (borrowed; NULL when unset). */
static inline PyObject *
head_field(const chead_state *st, PyObject *head, int index)
{
    return *(PyObject **)((char *)head + st->head_offsets[index]);
}

/* Is this a head's request of HTTP/1.0 or 1.1 whose path (a str) has no percent sign, as the
 * compiled environ and scope take? 1 yes, 0 no (the reference takes it), -1 with an error. */
static int
plain_http1_path(const chead_state *st, PyObject *version, PyObject *path)
{
    if (path == NULL || !PyUnicode_CheckExact(path) || (version != st->versions[0] && version != st->versions[1]))
        return 0;
    Py_ssize_t percent = PyUnicode_FindChar(path, '%', 0, PyUnicode_GET_LENGTH(path), 1);
    return percent == -1 ? 1 : percent == -2 ? -1 : 0;
}

PyDoc_STRVAR(build_environ_doc,
"build_environ($module, client, head, wsgi_input, content_length, forwarder_fields, host, /)\n"
"--\n"
"\n"
"wsgi.environ.build_environ_py in C for the common request: a RequestHead whose path has\n"
"no percent sign, no SCRIPT_NAME (in client, nor forwarded), HTTP/1.0 or 1.1. Any other\n"
"is handed to the Python function (set_environ_parts), which is the reference.");

static PyObject *
build_environ(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "build_environ() takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    if (st->env_reference == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "build_environ: set_environ_parts() was not called");
        return NULL;
    }
    PyObject *client = args[0], *head = args[1], *forwarder_fields = args[4], *host = args[5];
    PyObject **s = st->env_strings;
    if (st->head_type == NULL || Py_TYPE(head) != st->head_type || !PyDict_CheckExact(client) ||
        !PyAnySet_Check(forwarder_fields) || (args[3] != Py_None && !PyLong_CheckExact(args[3])))
        goto reference; /* (from here on no Python code runs while the head's fields are borrowed) */
    PyObject *method = head_field(st, head, 0), *target = head_field(st, head, 1), *path = head_field(st, head, 2);
    PyObject *query = head_field(st, head, 3), *version = head_field(st, head, 4);
    PyObject *headers = head_field(st, head, 5);
    int plain = plain_http1_path(st, version, path);
    if (plain <= 0 || method == NULL || target == NULL || query == NULL || headers == NULL) {
        if (plain < 0)
            return NULL;
        goto reference;
    }
    int forwarded = PySet_Contains(forwarder_fields, s[ENV_SCRIPT_NAME]);
    if (forwarded != 0) {
        if (forwarded < 0)
            return NULL;
        goto reference;
    }
    PyObject *script_name = PyDict_GetItemWithError(client, s[ENV_SCRIPT_NAME]);
    if (script_name == NULL || !PyUnicode_CheckExact(script_name) || PyUnicode_GET_LENGTH(script_name) != 0) {
        if (PyErr_Occurred())
            return NULL;
        goto reference;
    }

    PyObject *environ = PyDict_Copy(client);
    if (environ == NULL)
        return NULL;
    PyObject *length = args[3] == Py_None ? NULL : PyObject_Str(args[3]);
    if ((args[3] != Py_None && length == NULL) ||
        PyDict_SetItem(environ, s[ENV_REQUEST_METHOD], method) < 0 ||
        PyDict_SetItem(environ, s[ENV_PATH_INFO], path) < 0 ||
        PyDict_SetItem(environ, s[ENV_QUERY_STRING], query) < 0 ||
        PyDict_SetItem(environ, s[ENV_RAW_URI], target) < 0 ||
        PyDict_SetItem(environ, s[ENV_SERVER_PROTOCOL],
                       version == st->versions[1] ? s[ENV_HTTP_1_1] : s[ENV_HTTP_1_0]) < 0 ||
        PyDict_SetItem(environ, s[ENV_WSGI_INPUT], args[2]) < 0 ||
        (length != NULL && PyDict_SetItem(environ, s[ENV_CONTENT_LENGTH], length) < 0))
        goto error;
    PyObject *field_args[5] = {environ, headers, st->env_keys, st->env_key_of, forwarder_fields};
    PyObject *done = environ_fields(module, field_args, 5);
    if (done == NULL)
        goto error;
    Py_DECREF(done);
    if (host != Py_None && PyDict_SetItem(environ, s[ENV_HTTP_HOST], host) < 0)
        goto error;
    Py_XDECREF(length);
    return environ;

error:
    Py_XDECREF(length);
    Py_DECREF(environ);
    return NULL;

reference:
    return PyObject_Vectorcall(st->env_reference, args, 6, NULL);
}

/* -- the cached response head of a response ------------------------------------ */

PyDoc_STRVAR(set_response_head_type_doc,
"set_response_head_type($module, head_type, date_cache, http_date, /)\n"
"--\n"
"\n"
"Register what cached_head() reads: heads.Head (its slots sized, _prefix, _suffix, _date\n"
"and _bytes), writer's Date cache ([second, Date value, ...]) and writer.http_date, which\n"
"refreshes it.");

static PyObject *
set_response_head_type(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    Py_ssize_t offsets[N_RH_SLOTS];
    if (nargs != 3 || !PyType_Check(args[0]) || !PyList_CheckExact(args[1]) || PyList_GET_SIZE(args[1]) < 2 ||
        !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "set_response_head_type(head_type, date_cache: list, http_date)");
        return NULL;
    }
    for (int k = 0; k < N_RH_SLOTS; k++) {
        if ((offsets[k] = object_slot_offset(args[0], RH_SLOTS[k])) < 0)
            return NULL;
    }
    Py_XSETREF(st->rh_type, (PyTypeObject *)Py_NewRef(args[0]));
    memcpy(st->rh_offsets, offsets, sizeof(offsets));
    Py_XSETREF(st->date_cache, Py_NewRef(args[1]));
    Py_XSETREF(st->http_date, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

static inline PyObject **
rh_slot(const chead_state *st, PyObject *head, int index)
{
    return (PyObject **)((char *)head + st->rh_offsets[index]);
}

/* writer.http_date(): the cached value while its second is the current one, else what
 * http_date() makes (a new reference). */
static PyObject *
current_date(chead_state *st)
{
    struct timespec now;
    PyObject *cache = st->date_cache;
    if (clock_gettime(CLOCK_REALTIME, &now) == 0 && PyList_GET_SIZE(cache) >= 2) {
        PyObject *second = PyList_GET_ITEM(cache, 0), *date = PyList_GET_ITEM(cache, 1);
        int overflow = 0;
        long long cached = PyLong_Check(second) ? PyLong_AsLongLongAndOverflow(second, &overflow) : -1;
        if (cached == (long long)now.tv_sec && !overflow && PyBytes_CheckExact(date))
            return Py_NewRef(date);
        if (PyErr_Occurred())
            return NULL;
    }
    return PyObject_CallNoArgs(st->http_date);
}

/* Head.bytes(size): the head's bytes with the current Date; a sized head (its Content-Length
 * made per response) or any other type of head by its own method. */
static PyObject *
head_bytes(chead_state *st, PyObject *head, PyObject *body_size)
{
    PyObject *prefix = NULL, *suffix = NULL;
    if (Py_TYPE(head) == st->rh_type && *rh_slot(st, head, RH_SIZED) == Py_False) {
        prefix = *rh_slot(st, head, RH_PREFIX);
        suffix = *rh_slot(st, head, RH_SUFFIX);
    }
    if (prefix == NULL || suffix == NULL || !PyBytes_CheckExact(prefix) || !PyBytes_CheckExact(suffix)) {
        PyObject *size = body_size == Py_None ? PyLong_FromLong(0) : Py_NewRef(body_size);
        PyObject *data = PyObject_CallMethodOneArg(head, st->str_bytes, size);
        Py_DECREF(size);
        return data;
    }
    PyObject *date = current_date(st); /* (may run Python code: the slots are read again after it) */
    if (date == NULL)
        return NULL;
    PyObject **kept_date = rh_slot(st, head, RH_DATE), **kept_bytes = rh_slot(st, head, RH_BYTES);
    if (date == *kept_date && *kept_bytes != NULL) {
        Py_DECREF(date);
        return Py_NewRef(*kept_bytes);
    }
    prefix = *rh_slot(st, head, RH_PREFIX);
    suffix = *rh_slot(st, head, RH_SUFFIX);
    if (prefix == NULL || suffix == NULL || !PyBytes_CheckExact(prefix) || !PyBytes_CheckExact(suffix)) {
        PyErr_SetString(PyExc_TypeError, "a head's _prefix and _suffix must be bytes");
        Py_DECREF(date);
        return NULL;
    }
    if (!PyBytes_CheckExact(date)) {
        PyErr_SetString(PyExc_TypeError, "http_date() must return bytes");
        Py_DECREF(date);
        return NULL;
    }
    /* prefix "Date: " date CRLF suffix, as Head.bytes */
    Py_ssize_t n_prefix = PyBytes_GET_SIZE(prefix), n_date = PyBytes_GET_SIZE(date);
    Py_ssize_t n_suffix = PyBytes_GET_SIZE(suffix);
    PyObject *data = PyBytes_FromStringAndSize(NULL, n_prefix + 6 + n_date + 2 + n_suffix);
    if (data == NULL) {
        Py_DECREF(date);
        return NULL;
    }
    char *out = PyBytes_AS_STRING(data);
    memcpy(out, PyBytes_AS_STRING(prefix), (size_t)n_prefix);
    memcpy(out + n_prefix, "Date: ", 6);
    memcpy(out + n_prefix + 6, PyBytes_AS_STRING(date), (size_t)n_date);
    memcpy(out + n_prefix + 6 + n_date, "\r\n", 2);
    memcpy(out + n_prefix + 8 + n_date, PyBytes_AS_STRING(suffix), (size_t)n_suffix);
    Py_XSETREF(*kept_date, date);
    Py_XSETREF(*kept_bytes, Py_NewRef(data));
    return data;
}

PyDoc_STRVAR(cached_head_doc,
"cached_head($module, cache, status, reason, fields, is_head, version, keep_alive, body_size, /)\n"
"--\n"
"\n"
"heads.cached_head_py in C: (Head, its bytes) of the head cached under the key these make,\n"
"or None when none is; raises TypeError for fields that cannot be a key.");

static PyObject *
cached_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    if (nargs != 8 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "cached_head(cache: dict, status, reason, fields, is_head, version, "
                                         "keep_alive, body_size)");
        return NULL;
    }
    if (st->rh_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cached_head: set_response_head_type() was not called");
        return NULL;
    }
    PyObject *key = PyTuple_New(7);
    if (key == NULL)
        return NULL;
    for (int k = 0; k < 6; k++)
        PyTuple_SET_ITEM(key, k, Py_NewRef(args[k + 1]));
    PyTuple_SET_ITEM(key, 6, Py_NewRef(args[7] == Py_None ? Py_False : Py_True));
    PyObject *head = PyDict_GetItemWithError(args[0], key);
    Py_DECREF(key);
    if (head == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    Py_INCREF(head); /* (the cache may drop it while Python code runs) */
    PyObject *data = head_bytes(st, head, args[7]);
    if (data == NULL) {
        Py_DECREF(head);
        return NULL;
    }
    PyObject *result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(head);
        Py_DECREF(data);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, head);
    PyTuple_SET_ITEM(result, 1, data);
    return result;
}

/* The bytes read on the non-blocking socket ``fd``, up to ``size``: a new bytes object,
 * b"" at its end; NULL with errno set (EAGAIN when nothing waits) or an exception. */
static PyObject *
recv_some(int fd, Py_ssize_t size, int *failed_errno)
{
    PyObject *data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL)
        return NULL;
    ssize_t n;
    do {
        n = recv(fd, PyBytes_AS_STRING(data), (size_t)size, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        *failed_errno = errno;
        Py_DECREF(data);
        return NULL;
    }
    if (n != size && _PyBytes_Resize(&data, n) < 0)
        return NULL;
    return data;
}

PyDoc_STRVAR(recv_nowait_doc,
"recv_nowait(fd, size) -> bytes | None\n\n"
"Up to ``size`` bytes read on the socket ``fd`` without waiting: b\"\" at its end, None\n"
"when nothing waits (raises OSError for a reset or another failure). Where nothing waits\n"
"is the common case, as for a client accepted before its request came, this spares the\n"
"BlockingIOError a socket's recv() raises (see accepted.py's recv_nowait_py, the reference).");

static PyObject *
recv_nowait(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    int fd, failed = 0;
    Py_ssize_t size;
    if (nargs != 2 || !PyLong_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "recv_nowait() takes a descriptor and a size");
        return NULL;
    }
    if (fd_arg(args[0], &fd) < 0)
        return NULL;
    size = PyLong_AsSsize_t(args[1]);
    if (size == -1 && PyErr_Occurred())
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "negative size");
        return NULL;
    }
    PyObject *data = recv_some(fd, size, &failed);
    if (data != NULL || PyErr_Occurred())
        return data;
    if (failed == EAGAIN || failed == EWOULDBLOCK)
        Py_RETURN_NONE;
    errno = failed;
    return PyErr_SetFromErrno(PyExc_OSError);
}

#ifdef SOCK_NONBLOCK /* accept4() and its flags (Linux, the BSDs) */

/* The client's address as socket.accept() gives it: (host, port) for IPv4, (host, port,
 * flowinfo, scope_id) for IPv6; None for any other family. */
static PyObject *
ipv4_host(const struct in_addr *in)
{
    /* The last client's host, kept: clients mostly come from one address (a proxy, a load
     * balancer), and inet_ntop() formats with sprintf (1.2k instructions a connection). */
    static in_addr_t last_address;
    static PyObject *last_host;
    if (last_host != NULL && in->s_addr == last_address)
        return Py_NewRef(last_host);
    const unsigned char *octets = (const unsigned char *)&in->s_addr;
    char text[16];
    Py_ssize_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned int octet = octets[i];
        if (i > 0)
            text[n++] = '.';
        if (octet >= 100)
            text[n++] = (char)('0' + octet / 100);
        if (octet >= 10)
            text[n++] = (char)('0' + octet / 10 % 10);
        text[n++] = (char)('0' + octet % 10);
    }
    PyObject *host = PyUnicode_FromStringAndSize(text, n);
    if (host == NULL)
        return NULL;
    Py_XSETREF(last_host, Py_NewRef(host));
    last_address = in->s_addr;
    return host;
}

static PyObject *
peer_address(const struct sockaddr_storage *addr)
{
    char host[INET6_ADDRSTRLEN];
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
        PyObject *text = ipv4_host(&a->sin_addr), *port = NULL;
        if (text == NULL || (port = PyLong_FromLong(ntohs(a->sin_port))) == NULL) {
            Py_XDECREF(text);
            return NULL;
        }
        PyObject *pair = PyTuple_Pack(2, text, port);
        Py_DECREF(text);
        Py_DECREF(port);
        return pair;
    }
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
        if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(siII)", host, (int)ntohs(a->sin6_port), (unsigned int)ntohl(a->sin6_flowinfo),
                             (unsigned int)a->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(accept_early_doc,
"accept_early(listener, read_size, keepalive) -> (fd, address, data) | None\n\n"
"Accept a waiting client on the listening socket ``listener``: its descriptor (non-\n"
"blocking, close-on-exec), its address (None but for IPv4 and IPv6) and up to ``read_size``\n"
"bytes it has sent already (b\"\" when none, at its end, or failing: its transport learns);\n"
"``SO_KEEPALIVE`` set when ``keepalive``. None when no client waits. No socket object is\n"
"made: under a connection per request that costs a getsockname() and an object per client\n"
"(see listeners.py's accept_early_py, the reference).");

static PyObject *
accept_early(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    int listener, fd, failed = 0;
    if (nargs != 3 || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "accept_early() takes a socket, a size and a flag");
        return NULL;
    }
    if ((listener = PyObject_AsFileDescriptor(args[0])) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return NULL;
        PyErr_Clear(); /* (a closed socket's fileno() is -1: fail as its accept() does) */
        errno = EBADF;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_ssize_t read_size = PyLong_AsSsize_t(args[1]);
    if (read_size == -1 && PyErr_Occurred())
        return NULL;
    int keepalive = PyObject_IsTrue(args[2]);
    if (keepalive < 0)
        return NULL;
    struct sockaddr_storage addr;
    socklen_t addrlen = sizeof(addr);
    memset(&addr, 0, sizeof(addr));
    do {
        fd = accept4(listener, (struct sockaddr *)&addr, &addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            Py_RETURN_NONE;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (keepalive) {
        int on = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)); /* (gone already: its transport tells) */
    }
    PyObject *address = peer_address(&addr), *data = NULL, *result = NULL;
    if (address == NULL)
        goto fail;
    if (read_size > 0) {
        data = recv_some(fd, read_size, &failed);
        if (data == NULL) {
            if (PyErr_Occurred())
                goto fail;
            data = PyBytes_FromStringAndSize(NULL, 0); /* nothing yet, or a reset or failure its transport sees */
            if (data == NULL)
                goto fail;
        }
    }
    else if ((data = PyBytes_FromStringAndSize(NULL, 0)) == NULL)
        goto fail;
    PyObject *descriptor = PyLong_FromLong(fd);
    if (descriptor == NULL)
        goto fail;
    result = PyTuple_Pack(3, descriptor, address, data); /* (not Py_BuildValue: it parses its format) */
    Py_DECREF(descriptor);
    if (result != NULL) {
        Py_DECREF(address);
        Py_DECREF(data);
        return result;
    }
fail:
    Py_XDECREF(address);
    Py_XDECREF(data);
    close(fd);
    return NULL;
}

#endif /* SOCK_NONBLOCK */

/* -- a whole request head fed alone --------------------------------------------------- */

PyDoc_STRVAR(set_parser_type_doc,
"set_parser_type($module, parser_type, end_of_message, states, valid_hosts, /)\n"
"--\n"
"\n"
"Register what whole_head() reads: parser.RequestParser (its slots state, buffer,\n"
"_head_size and _plain_limits), the END_OF_MESSAGE event, the states (HEAD, DONE, ERROR)\n"
"and host.py's VALID_HOSTS.");

static PyObject *
set_parser_type(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    Py_ssize_t offsets[N_PARSER_SLOTS];
    long states[3];
    if (nargs != 4 || !PyType_Check(args[0]) || !PyTuple_CheckExact(args[2]) || PyTuple_GET_SIZE(args[2]) != 3 ||
        !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "set_parser_type(parser_type, end_of_message, (HEAD, DONE, ERROR), valid_hosts: dict)");
        return NULL;
    }
    for (int k = 0; k < 3; k++) {
        states[k] = PyLong_AsLong(PyTuple_GET_ITEM(args[2], k));
        if (states[k] == -1 && PyErr_Occurred())
            return NULL;
    }
    for (int k = 0; k < N_PARSER_SLOTS; k++) {
        if ((offsets[k] = object_slot_offset(args[0], PARSER_SLOTS[k])) < 0)
            return NULL;
    }
    Py_XSETREF(st->parser_type, (PyTypeObject *)Py_NewRef(args[0]));
    memcpy(st->parser_offsets, offsets, sizeof(offsets));
    st->state_head = states[0];
    st->state_done = states[1];
    st->state_error = states[2];
    Py_XSETREF(st->end_of_message, Py_NewRef(args[1]));
    Py_XSETREF(st->valid_hosts, Py_NewRef(args[3]));
    Py_RETURN_NONE;
}

static inline PyObject **
parser_slot(const chead_state *st, PyObject *parser, int index)
{
    return (PyObject **)((char *)parser + st->parser_offsets[index]);
}

/* The parser's state (a slot), as the parser's code sets it: an int of the registered ones. */
static int
set_parser_state(chead_state *st, PyObject *parser, long state)
{
    PyObject *value = PyLong_FromLong(state);
    if (value == NULL)
        return -1;
    Py_XSETREF(*parser_slot(st, parser, PARSER_STATE), value);
    return 0;
}

/* Does ``s`` (``n`` bytes) end with a CRLFCRLF, after at least one byte? Whether it is the first
 * one is known without a search of its own in the common case: a plain head has no empty line
 * (plain_parse declines one), and only a declined head is searched (has_earlier_blank_line). */
static int
ends_with_blank_line(const char *s, Py_ssize_t n)
{
    return n >= 5 && memcmp(s + n - 4, "\r\n\r\n", 4) == 0;
}

/* Does ``s`` (``n`` bytes, ending with CRLFCRLF) hold a CRLFCRLF before its end? */
static int
has_earlier_blank_line(const char *s, Py_ssize_t n)
{
    return memmem(s, (size_t)(n - 1), "\r\n\r\n", 4) != NULL;
}

PyDoc_STRVAR(whole_head_doc,
"whole_head($module, parser, data, /)\n"
"--\n"
"\n"
"RequestParser.feed(data) for the commonest piece, a parser of exactly the registered type\n"
"waiting for a head with nothing buffered and ``data`` (bytes) exactly one head: its events,\n"
"as feed's first branch makes them (the reference). None for any other parser or piece,\n"
"which feed's Python then takes.");

static PyObject *
whole_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "whole_head expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *parser = args[0], *data = args[1];
    if (st->parser_type == NULL || Py_TYPE(parser) != st->parser_type || !PyBytes_CheckExact(data) ||
        st->head_type == NULL)
        Py_RETURN_NONE;
    PyObject *state = *parser_slot(st, parser, PARSER_STATE), *buffer = *parser_slot(st, parser, PARSER_BUFFER);
    PyObject *head_size = *parser_slot(st, parser, PARSER_HEAD_SIZE);
    PyObject *plain_limits = *parser_slot(st, parser, PARSER_PLAIN_LIMITS);
    if (state == NULL || buffer == NULL || head_size == NULL || plain_limits == NULL || !PyLong_CheckExact(state) ||
        !PyByteArray_CheckExact(buffer) || PyByteArray_GET_SIZE(buffer) != 0 || !PyLong_CheckExact(head_size) ||
        !PyTuple_CheckExact(plain_limits) || PyTuple_GET_SIZE(plain_limits) != 3)
        Py_RETURN_NONE;
    long current = PyLong_AsLong(state);
    if (current != st->state_head) {
        if (current == -1 && PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    const Py_ssize_t n = PyBytes_GET_SIZE(data), end = n - 4;
    Py_ssize_t size, limits[3];
    if (limit_arg(head_size, &size) < 0)
        return NULL;
    if (!ends_with_blank_line(PyBytes_AS_STRING(data), n) || end >= size - 3)
        Py_RETURN_NONE;
    for (int k = 0; k < 3; k++) {
        if (limit_arg(PyTuple_GET_ITEM(plain_limits, k), &limits[k]) < 0)
            return NULL;
    }
    /* From here on, as feed's first branch: what raises an Exception leaves the parser in ERROR. */
    Py_INCREF(parser);
    PyObject *events = NULL, *head = common_head(st, (const unsigned char *)PyBytes_AS_STRING(data), end, limits,
                                                st->valid_hosts);
    if (head == Py_None) {
        Py_DECREF(head);
        if (has_earlier_blank_line(PyBytes_AS_STRING(data), n)) { /* more than one head: feed's way */
            Py_DECREF(parser);
            Py_RETURN_NONE;
        }
        PyObject *lines = PyBytes_FromStringAndSize(PyBytes_AS_STRING(data), end);
        head = lines == NULL ? NULL : PyObject_CallMethodOneArg(parser, st->str_parse_plain_head, lines);
        Py_XDECREF(lines);
    }
    if (head == NULL)
        goto failed;
    if (head == Py_None) { /* not plain: the buffered path, as feed's last lines */
        Py_DECREF(head);
        buffer = *parser_slot(st, parser, PARSER_BUFFER);
        if (buffer == NULL || !PyByteArray_CheckExact(buffer)) {
            PyErr_SetString(PyExc_TypeError, "whole_head: the parser's buffer is not a bytearray");
            goto done;
        }
        Py_ssize_t had = PyByteArray_GET_SIZE(buffer);
        if (PyByteArray_Resize(buffer, had + n) < 0)
            goto done;
        memcpy(PyByteArray_AS_STRING(buffer) + had, PyBytes_AS_STRING(data), (size_t)n);
        events = PyObject_CallMethodNoArgs(parser, st->str_run);
        goto done;
    }
    PyObject *flag = Py_IS_TYPE(head, st->head_type) ? head_field(st, head, 12) : NULL; /* (has_body) */
    flag = flag != NULL ? Py_NewRef(flag) : PyObject_GetAttrString(head, "has_body");
    int has_body = flag == NULL ? -1 : PyObject_IsTrue(flag);
    Py_XDECREF(flag);
    if (has_body < 0)
        goto failed;
    if (!has_body) {
        if (set_parser_state(st, parser, st->state_done) < 0)
            goto failed;
        events = PyList_New(2);
        if (events == NULL)
            goto failed;
        PyList_SET_ITEM(events, 0, head);
        PyList_SET_ITEM(events, 1, Py_NewRef(st->end_of_message));
        goto done;
    }
    PyObject *started = PyObject_CallMethodOneArg(parser, st->str_start_body, head); /* raises on a body over the cap */
    if (started == NULL)
        goto failed;
    Py_DECREF(started);
    events = PyList_New(1);
    if (events == NULL)
        goto failed;
    PyList_SET_ITEM(events, 0, head);
    goto done;

failed:
    Py_XDECREF(head);
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if (set_parser_state(st, parser, st->state_error) < 0) { /* (the new error stands) */
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
        }
        else
            PyErr_Restore(type, value, traceback);
    }
done:
    Py_DECREF(parser);
    return events;
}

/* -- the ASGI http scope ------------------------------------------------------------ */

PyDoc_STRVAR(set_scope_parts_doc,
"set_scope_parts($module, spec_version, reference, /)\n"
"--\n"
"\n"
"Register what http_scope() puts in a scope's asgi dict as its spec_version, and the\n"
"Python http_scope it hands the uncommon requests to (the reference).");

static PyObject *
set_scope_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    if (nargs != 2 || !PyUnicode_CheckExact(args[0]) || !PyCallable_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "set_scope_parts(spec_version: str, reference)");
        return NULL;
    }
    Py_XSETREF(st->scope_spec_version, Py_NewRef(args[0]));
    Py_XSETREF(st->scope_reference, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

/* A new dict of ``n`` (key index, value) pairs, the values new references (stolen, also on failure). */
static PyObject *
scope_dict(chead_state *st, int n, const int *keys, PyObject **values)
{
    PyObject *d = _PyDict_NewPresized(n); /* (no resize on the way, as a dict literal) */
    int k = 0;
    for (; d != NULL && k < n; k++) {
        if (values[k] == NULL || PyDict_SetItem(d, st->scope_strings[keys[k]], values[k]) < 0)
            Py_CLEAR(d);
        Py_XDECREF(values[k]);
    }
    for (; k < n; k++)
        Py_XDECREF(values[k]);
    return d;
}

PyDoc_STRVAR(http_scope_doc,
"http_scope($module, head, peer, server, asgi_version, root_path, state, /)\n"
"--\n"
"\n"
"asgi.scope.http_scope_py in C for the common request: a RequestHead of HTTP/1.0 or 1.1\n"
"whose path has no percent sign, no root_path, state a dict. Any other is handed to the\n"
"Python function (set_scope_parts), which is the reference.");

static PyObject *
http_scope(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    chead_state *st = get_state(module);
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "http_scope() takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    if (st->scope_reference == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "http_scope: set_scope_parts() was not called");
        return NULL;
    }
    PyObject *head = args[0], *peer = args[1], *root_path = args[4], *state = args[5];
    PyObject **s = st->scope_strings;
    if (st->head_type == NULL || Py_TYPE(head) != st->head_type || !PyTuple_CheckExact(peer) ||
        PyTuple_GET_SIZE(peer) != 2 || !PyUnicode_CheckExact(root_path) || PyUnicode_GET_LENGTH(root_path) != 0 ||
        !PyDict_CheckExact(state))
        goto reference;
    PyObject *method = head_field(st, head, 0), *path = head_field(st, head, 2), *query = head_field(st, head, 3);
    PyObject *version = head_field(st, head, 4), *raw = head_field(st, head, 6);
    int plain = plain_http1_path(st, version, path);
    if (plain <= 0 || method == NULL || query == NULL || raw == NULL || !PyUnicode_CheckExact(query) ||
        !PyList_CheckExact(raw)) {
        if (plain < 0)
            return NULL;
        goto reference;
    }
    /* One value at a time, each a new reference: the first that fails ends it (nothing more is
     * called with an error set). Only references taken here are held across calls that may run
     * Python (lower_fields' name objects, the dicts' hashes are of exact str keys). */
    static const int ASGI_KEYS[] = {SC_VERSION, SC_SPEC_VERSION};
    static const int EXTENSION_KEYS[] = {SC_TRAILERS, SC_PATHSEND, SC_ZEROCOPYSEND};
    static const int SCOPE_KEYS[] = {
        SC_ASGI, SC_HTTP_VERSION, SC_PATH, SC_RAW_PATH, SC_QUERY_STRING, SC_ROOT_PATH, SC_HEADERS, SC_CLIENT,
        SC_SERVER, SC_STATE, SC_TYPE, SC_METHOD, SC_SCHEME, SC_EXTENSIONS,
    };
    PyObject *values[14] = {NULL};
    Py_INCREF(head);
    PyObject *asgi_values[] = {Py_NewRef(args[3]), Py_NewRef(st->scope_spec_version)};
    if ((values[0] = scope_dict(st, 2, ASGI_KEYS, asgi_values)) == NULL)
        goto failed;
    values[1] = Py_NewRef(version == st->versions[1] ? s[SC_HTTP_1_1] : s[SC_HTTP_1_0]);
    values[2] = Py_NewRef(path);
    if ((values[3] = PyUnicode_AsLatin1String(path)) == NULL ||
        (values[4] = PyUnicode_AsLatin1String(query)) == NULL)
        goto failed;
    values[5] = Py_NewRef(root_path);
    if ((values[6] = lower_fields(module, raw)) == NULL)
        goto failed;
    values[7] = Py_NewRef(PyTuple_GET_ITEM(peer, 0));
    values[8] = Py_NewRef(args[2]);
    if ((values[9] = PyDict_Copy(state)) == NULL)
        goto failed;
    values[10] = Py_NewRef(s[SC_HTTP]);
    values[11] = Py_NewRef(method);
    values[12] = Py_NewRef(PyTuple_GET_ITEM(peer, 1));
    PyObject *extension_values[3] = {NULL};
    for (int k = 0; k < 3; k++) {
        if ((extension_values[k] = PyDict_New()) == NULL) {
            for (int j = 0; j < k; j++)
                Py_DECREF(extension_values[j]);
            goto failed;
        }
    }
    if ((values[13] = scope_dict(st, 3, EXTENSION_KEYS, extension_values)) == NULL)
        goto failed;
    Py_DECREF(head);
    return scope_dict(st, 14, SCOPE_KEYS, values);

failed:
    for (int k = 0; k < 14; k++)
        Py_XDECREF(values[k]);
    Py_DECREF(head);
    return NULL;

reference:
    return PyObject_Vectorcall(st->scope_reference, args, 6, NULL);
}

/* -- copy_slots: a new connection as a copy of a template (server.py, ServerHttpProtocol.copied) -- */

PyDoc_STRVAR(copy_slots_doc,
"copy_slots(dst, src)\n--\n\n"
"Give every slot of ``dst`` the value ``src``'s holds (unset where it is unset): the slots\n"
"declared by ``__slots__`` in each class of their type's MRO. Both must be of exactly one\n"
"type. Its reference is ``copies.copy_slots_py``.");

/* The offsets of the object slots declared by __slots__ in the classes written in Python of
 * ``type``'s MRO (a built-in's members are its own), written to ``offsets`` when not NULL;
 * their number. */
static Py_ssize_t
slot_offsets(PyTypeObject *type, Py_ssize_t *offsets)
{
    PyObject *mro = type->tp_mro;
    Py_ssize_t n = 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(mro); k++) {
        PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, k);
        if (!(base->tp_flags & Py_TPFLAGS_HEAPTYPE) || base->tp_members == NULL)
            continue;
        for (PyMemberDef *member = base->tp_members; member->name != NULL; member++) {
            if (member->type != T_OBJECT_EX || (member->flags & READONLY))
                continue;
            if (offsets != NULL)
                offsets[n] = member->offset;
            n++;
        }
    }
    return n;
}

/* Give ``dst`` the slots of ``src`` (both of ``type``, which has an MRO). Their offsets are
 * kept in the module's state for up to N_SLOT_LAYOUTS types: the types a worker copies are
 * few (its connection classes, their parser and transport, an exchange); another's are
 * found for the copy. -1 with an exception set on failure. */
static int
copy_slots_of(chead_state *st, PyTypeObject *type, PyObject *dst, PyObject *src)
{
    const struct slot_layout *layout = NULL;
    for (int k = 0; k < st->n_layouts && layout == NULL; k++) {
        if (st->layouts[k].type == type)
            layout = &st->layouts[k];
    }
    Py_ssize_t count = layout != NULL ? layout->count : slot_offsets(type, NULL);
    Py_ssize_t *offsets = layout != NULL ? layout->offsets
                                         : PyMem_Malloc((size_t)(count ? count : 1) * sizeof(Py_ssize_t));
    if (offsets == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (layout == NULL) {
        slot_offsets(type, offsets);
        if (st->n_layouts < N_SLOT_LAYOUTS) {
            struct slot_layout *kept = &st->layouts[st->n_layouts++];
            kept->type = (PyTypeObject *)Py_NewRef(type);
            kept->count = count;
            kept->offsets = offsets;
            layout = kept;
        }
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject **to = (PyObject **)((char *)dst + offsets[k]);
        PyObject *old = *to;
        *to = Py_XNewRef(*(PyObject **)((char *)src + offsets[k]));
        Py_XDECREF(old);
    }
    if (layout == NULL)
        PyMem_Free(offsets);
    return 0;
}

static int
has_mro(PyTypeObject *type)
{
    if (type->tp_mro == NULL || !PyTuple_Check(type->tp_mro)) {
        PyErr_SetString(PyExc_TypeError, "copy_slots: the type has no MRO");
        return 0;
    }
    return 1;
}

static PyObject *
copy_slots(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "copy_slots expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *dst = args[0], *src = args[1];
    PyTypeObject *type = Py_TYPE(src);
    if (Py_TYPE(dst) != type) {
        PyErr_SetString(PyExc_TypeError, "copy_slots: both objects must be of one type");
        return NULL;
    }
    if (!has_mro(type) || copy_slots_of(get_state(module), type, dst, src) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(copy_of_doc,
"copy_of(template)\n--\n\n"
"A new object of ``template``'s type, made as ``object.__new__`` makes it (no ``__init__``),\n"
"with the slots ``template`` holds (``copy_slots``). Its reference is ``copies.copy_of_py``.");

static PyObject *
copy_of(PyObject *module, PyObject *template)
{
    PyTypeObject *type = Py_TYPE(template);
    if (!has_mro(type))
        return NULL;
    PyObject *no_args = PyTuple_New(0);
    if (no_args == NULL)
        return NULL;
    PyObject *copy = PyBaseObject_Type.tp_new(type, no_args, NULL);
    Py_DECREF(no_args);
    if (copy == NULL)
        return NULL;
    if (copy_slots_of(get_state(module), type, copy, template) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    return copy;
}

static PyMethodDef chead_methods[] = {
    {"send_now", (PyCFunction)(void (*)(void))send_now, METH_FASTCALL, send_now_doc},
    {"send_last", (PyCFunction)(void (*)(void))send_last, METH_FASTCALL, send_last_doc},
    {"recv_nowait", (PyCFunction)(void (*)(void))recv_nowait, METH_FASTCALL, recv_nowait_doc},
#ifdef SOCK_NONBLOCK
    {"accept_early", (PyCFunction)(void (*)(void))accept_early, METH_FASTCALL, accept_early_doc},
#endif
    {"parse_plain_head", (PyCFunction)(void (*)(void))parse_plain_head, METH_FASTCALL,
     parse_plain_head_doc},
    {"set_head_types", (PyCFunction)(void (*)(void))set_head_types, METH_FASTCALL, set_head_types_doc},
    {"simple_head", (PyCFunction)simple_head, METH_O, simple_head_doc},
    {"request_head", (PyCFunction)(void (*)(void))request_head, METH_FASTCALL, request_head_doc},
    {"set_name_type", (PyCFunction)set_name_type, METH_O, set_name_type_doc},
    {"lower_fields", (PyCFunction)lower_fields, METH_O, lower_fields_doc},
    {"bytes_pairs", (PyCFunction)bytes_pairs, METH_O, bytes_pairs_doc},
    {"unquote_plus_ascii", (PyCFunction)unquote_plus_ascii, METH_O, unquote_plus_ascii_doc},
    {"environ_fields", (PyCFunction)(void (*)(void))environ_fields, METH_FASTCALL, environ_fields_doc},
    {"set_environ_parts", (PyCFunction)(void (*)(void))set_environ_parts, METH_FASTCALL, set_environ_parts_doc},
    {"build_environ", (PyCFunction)(void (*)(void))build_environ, METH_FASTCALL, build_environ_doc},
    {"set_response_head_type", (PyCFunction)(void (*)(void))set_response_head_type, METH_FASTCALL,
     set_response_head_type_doc},
    {"cached_head", (PyCFunction)(void (*)(void))cached_head, METH_FASTCALL, cached_head_doc},
    {"set_parser_type", (PyCFunction)(void (*)(void))set_parser_type, METH_FASTCALL, set_parser_type_doc},
    {"whole_head", (PyCFunction)(void (*)(void))whole_head, METH_FASTCALL, whole_head_doc},
    {"set_scope_parts", (PyCFunction)(void (*)(void))set_scope_parts, METH_FASTCALL, set_scope_parts_doc},
    {"http_scope", (PyCFunction)(void (*)(void))http_scope, METH_FASTCALL, http_scope_doc},
    {"copy_slots", (PyCFunction)(void (*)(void))copy_slots, METH_FASTCALL, copy_slots_doc},
    {"copy_of", (PyCFunction)copy_of, METH_O, copy_of_doc},
    {"set_channel_type", (PyCFunction)(void (*)(void))set_channel_type, METH_FASTCALL, set_channel_type_doc},
    {"answer_whole", (PyCFunction)(void (*)(void))answer_whole, METH_FASTCALL, answer_whole_doc},
    {"set_exchange_type", (PyCFunction)set_exchange_type, METH_O, set_exchange_type_doc},
    {"answer_exchange", (PyCFunction)(void (*)(void))answer_exchange, METH_FASTCALL, answer_exchange_doc},
    {"response_finished", (PyCFunction)(void (*)(void))finish_response, METH_FASTCALL, finish_response_doc},
    {"set_exchange_parts", (PyCFunction)(void (*)(void))set_exchange_parts, METH_FASTCALL, set_exchange_parts_doc},
    {"run_exchange", (PyCFunction)(void (*)(void))run_exchange, METH_FASTCALL, run_exchange_doc},
    {"set_dispatch_parts", (PyCFunction)(void (*)(void))set_dispatch_parts, METH_FASTCALL, set_dispatch_parts_doc},
    {"handle_events", (PyCFunction)(void (*)(void))handle_events, METH_FASTCALL, handle_events_doc},
    {"write_held", (PyCFunction)write_held, METH_O, write_held_doc},
    {"set_sender_parts", (PyCFunction)(void (*)(void))set_sender_parts, METH_FASTCALL, set_sender_parts_doc},
    {"asgi_sender", (PyCFunction)asgi_sender, METH_O, asgi_sender_doc},
    {"set_close_parts", (PyCFunction)(void (*)(void))set_close_parts, METH_FASTCALL, set_close_parts_doc},
    {"set_accepted_type", (PyCFunction)set_accepted_type, METH_O, set_accepted_type_doc},
    {"accepted_lost", (PyCFunction)(void (*)(void))accepted_lost, METH_FASTCALL, accepted_lost_doc},
    {"serve_accepted", (PyCFunction)(void (*)(void))serve_accepted, METH_FASTCALL, serve_accepted_doc},
    {"receiver", (PyCFunction)(void (*)(void))receiver, METH_FASTCALL, receiver_doc},
    {NULL, NULL, 0, NULL},
};

static int
chead_exec(PyObject *module)
{
    chead_state *st = get_state(module);

    init_char_classes();
    if (init_known_index() < 0)
        return -1;
    for (int k = 0; k < N_METHODS; k++) {
        st->methods[k] = PyUnicode_InternFromString(METHODS[k]);
        if (st->methods[k] == NULL)
            return -1;
    }
    for (int k = 0; k < N_KNOWN; k++) {
        st->name_str[k] = PyUnicode_InternFromString(KNOWN_NAMES[k]);
        if (st->name_str[k] == NULL)
            return -1;
        st->name_bytes[k] = PyBytes_FromString(KNOWN_NAMES[k]);
        if (st->name_bytes[k] == NULL)
            return -1;
        size_t h = address_slot(st->name_bytes[k]);
        while (st->by_address[h] != NULL)
            h = (h + 1) & (NAME_SLOTS - 1);
        st->by_address[h] = st->name_bytes[k]; /* borrowed: name_bytes holds it */
        st->by_address_index[h] = k;
    }
    for (int k = 0; k < N_KNOWN; k++) {
        char lower[MAX_KNOWN_LEN + 1];
        size_t n = strlen(KNOWN_NAMES[k]);
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)ascii_lower((unsigned char)KNOWN_NAMES[k][i]);
        int same = known_name((const unsigned char *)lower, (Py_ssize_t)n);
        st->name_lower[k] = same >= 0 ? Py_NewRef(st->name_bytes[same]) : PyBytes_FromString(lower);
        if (st->name_lower[k] == NULL)
            return -1;
    }
    st->str_items = PyUnicode_InternFromString("items");
    st->key_content_type = PyUnicode_InternFromString("CONTENT_TYPE");
    st->key_cookie = PyUnicode_InternFromString("HTTP_COOKIE");
    st->sep_cookie = PyUnicode_InternFromString("; ");
    st->sep_list = PyUnicode_InternFromString(", ");
    if (st->str_items == NULL || st->key_content_type == NULL || st->key_cookie == NULL ||
        st->sep_cookie == NULL || st->sep_list == NULL)
        return -1;
    st->str_bytes = PyUnicode_InternFromString("bytes");
    st->str_parse_plain_head = PyUnicode_InternFromString("_parse_plain_head");
    st->str_start_body = PyUnicode_InternFromString("_start_body");
    st->str_run = PyUnicode_InternFromString("_run");
    if (st->str_bytes == NULL || st->str_parse_plain_head == NULL || st->str_start_body == NULL || st->str_run == NULL)
        return -1;
    for (int k = 0; k < N_ENV_STRINGS; k++) {
        st->env_strings[k] = PyUnicode_InternFromString(ENV_STRINGS[k]);
        if (st->env_strings[k] == NULL)
            return -1;
    }
    for (int k = 0; k < N_SCOPE_STRINGS; k++) {
        st->scope_strings[k] = PyUnicode_InternFromString(SCOPE_STRINGS[k]);
        if (st->scope_strings[k] == NULL)
            return -1;
    }
    if (PyModule_AddIntConstant(module, "SPECIAL_HOST", SPECIAL_HOST) < 0 ||
        PyModule_AddIntConstant(module, "SPECIAL_CONTENT_LENGTH", SPECIAL_CONTENT_LENGTH) < 0 ||
        PyModule_AddIntConstant(module, "SPECIAL_TRANSFER_ENCODING", SPECIAL_TRANSFER_ENCODING) < 0 ||
        PyModule_AddIntConstant(module, "SPECIAL_CONNECTION", SPECIAL_CONNECTION) < 0 ||
        PyModule_AddIntConstant(module, "SPECIAL_EXPECT", SPECIAL_EXPECT) < 0 ||
        PyModule_AddIntConstant(module, "SPECIAL_UPGRADE", SPECIAL_UPGRADE) < 0 ||
        PyModule_AddIntConstant(module, "SPECIAL_CONTENT_TYPE", SPECIAL_CONTENT_TYPE) < 0)
        return -1;
    return eager_add_types(module);
}

static int
chead_traverse(PyObject *module, visitproc visit, void *arg)
{
    chead_state *st = get_state(module);
    if (st == NULL)
        return 0;
    for (int k = 0; k < N_METHODS; k++)
        Py_VISIT(st->methods[k]);
    for (int k = 0; k < N_KNOWN; k++) {
        Py_VISIT(st->name_str[k]);
        Py_VISIT(st->name_bytes[k]);
        Py_VISIT(st->name_lower[k]);
    }
    Py_VISIT(st->head_type);
    Py_VISIT(st->multidict_type);
    Py_VISIT(st->versions[0]);
    Py_VISIT(st->versions[1]);
    Py_VISIT(st->str_items);
    Py_VISIT(st->key_content_type);
    Py_VISIT(st->key_cookie);
    Py_VISIT(st->sep_cookie);
    Py_VISIT(st->sep_list);
    for (int k = 0; k < N_ENV_STRINGS; k++)
        Py_VISIT(st->env_strings[k]);
    Py_VISIT(st->env_keys);
    Py_VISIT(st->env_key_of);
    Py_VISIT(st->env_reference);
    Py_VISIT(st->rh_type);
    Py_VISIT(st->date_cache);
    Py_VISIT(st->http_date);
    Py_VISIT(st->str_bytes);
    Py_VISIT(st->parser_type);
    Py_VISIT(st->end_of_message);
    Py_VISIT(st->valid_hosts);
    Py_VISIT(st->str_parse_plain_head);
    Py_VISIT(st->str_start_body);
    Py_VISIT(st->str_run);
    for (int k = 0; k < N_SCOPE_STRINGS; k++)
        Py_VISIT(st->scope_strings[k]);
    Py_VISIT(st->scope_spec_version);
    Py_VISIT(st->scope_reference);
    for (int k = 0; k < st->n_layouts; k++)
        Py_VISIT(st->layouts[k].type);
    return 0;
}

static int
chead_clear(PyObject *module)
{
    chead_state *st = get_state(module);
    if (st == NULL)
        return 0;
    for (int k = 0; k < N_METHODS; k++)
        Py_CLEAR(st->methods[k]);
    for (int k = 0; k < N_KNOWN; k++) {
        Py_CLEAR(st->name_str[k]);
        Py_CLEAR(st->name_bytes[k]);
        Py_CLEAR(st->name_lower[k]);
    }
    memset(st->by_address, 0, sizeof(st->by_address));
    Py_CLEAR(st->head_type);
    Py_CLEAR(st->multidict_type);
    Py_CLEAR(st->versions[0]);
    Py_CLEAR(st->versions[1]);
    Py_CLEAR(st->str_items);
    Py_CLEAR(st->key_content_type);
    Py_CLEAR(st->key_cookie);
    Py_CLEAR(st->sep_cookie);
    Py_CLEAR(st->sep_list);
    for (int k = 0; k < N_ENV_STRINGS; k++)
        Py_CLEAR(st->env_strings[k]);
    Py_CLEAR(st->env_keys);
    Py_CLEAR(st->env_key_of);
    Py_CLEAR(st->env_reference);
    Py_CLEAR(st->rh_type);
    Py_CLEAR(st->date_cache);
    Py_CLEAR(st->http_date);
    Py_CLEAR(st->str_bytes);
    Py_CLEAR(st->parser_type);
    Py_CLEAR(st->end_of_message);
    Py_CLEAR(st->valid_hosts);
    Py_CLEAR(st->str_parse_plain_head);
    Py_CLEAR(st->str_start_body);
    Py_CLEAR(st->str_run);
    for (int k = 0; k < N_SCOPE_STRINGS; k++)
        Py_CLEAR(st->scope_strings[k]);
    Py_CLEAR(st->scope_spec_version);
    Py_CLEAR(st->scope_reference);
    for (int k = 0; k < st->n_layouts; k++) {
        Py_CLEAR(st->layouts[k].type);
        PyMem_Free(st->layouts[k].offsets);
        st->layouts[k].offsets = NULL;
    }
    st->n_layouts = 0;
    return 0;
}

static void
chead_free(void *module)
{
    chead_clear((PyObject *)module);
}

static PyModuleDef_Slot chead_slots[] = {
    {Py_mod_exec, chead_exec},
    {0, NULL},
};

static struct PyModuleDef chead_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "server.protocol._chead",
    .m_doc = "Compiled fast path of the HTTP/1.1 request-head parser (see parser.py).",
    .m_size = sizeof(chead_state),
    .m_methods = chead_methods,
    .m_slots = chead_slots,
    .m_traverse = chead_traverse,
    .m_clear = chead_clear,
    .m_free = chead_free,
};

PyMODINIT_FUNC
PyInit__chead(void)
{
    return PyModuleDef_Init(&chead_module);
}
