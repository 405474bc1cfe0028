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
PyObject *write_held(PyObject *module, PyObject *pass_end);
extern const char write_held_doc[];
PyObject *set_exchange_type(PyObject *module, PyObject *exchange_type);
extern const char answer_whole_doc[];
extern const char answer_exchange_doc[];
extern const char finish_response_doc[];
extern const char set_exchange_type_doc[];
/* Verdicts on classes: whether each is ``base`` or a subclass that keeps ``base``'s methods of
 * ``names`` (a subclass that replaces one is declined), kept for N_SEEN classes with their version
 * tag (any change to a class or a base judges it again). */
#define N_SEEN 8 /* (a worker has one or two connection classes) */
struct verdicts {
    PyTypeObject *base;
    int count;
    const char *const *names;
    PyObject **methods; /* base's, of names */
    struct {
        PyTypeObject *type;
        unsigned int version;
        int ok;
    } seen[N_SEEN];
};
/* 1 or 0; -1 on an error. */
int judged(struct verdicts *verdicts, PyTypeObject *type);
/* The base and its methods looked up (the verdicts before forgotten); -1 on an error. */
int set_verdicts_base(struct verdicts *verdicts, PyObject *base);
/* An object slot at ``offset``, read; and stored (the old value let go). */
#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))
static inline void
set_slot(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    PyObject *old = SLOT(obj, offset);
    SLOT(obj, offset) = Py_NewRef(value);
    Py_XDECREF(old);
}
/* Whether a function called as ``usage`` says got its ``expected`` arguments (TypeError set if not). */
int arguments(Py_ssize_t nargs, Py_ssize_t expected, const char *usage);
/* The truth of ``obj``'s attribute ``name``: 1, 0, or -1 with the error set. */
int attribute_true(PyObject *obj, PyObject *name);
/* The offsets of the writable object slots ``names`` of ``type``; -1 with TypeError set if one is not. */
int offsets_of(PyObject *type, const char *const *names, int count, Py_ssize_t *offsets);
/* ``texts`` as interned strings, made where ``strings`` has none yet; -1 on an error. */
int interned(const char *const *texts, int count, PyObject **strings);
/* _chead.c's: the offset of a writable object slot of ``type``, or -1 with TypeError set. */
Py_ssize_t object_slot_offset(PyObject *type, const char *name);
extern const char set_channel_type_doc[];
/* The exception being raised, taken (the error indicator cleared): normalised, with its traceback. */
PyObject *caught(void);
/* _chead.c's send_last(fd, data). */
PyObject *send_last(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
/* _accepted.c's: ``channel._write_last(transport, data)`` and ``channel.close()``, compiled, for a
 * channel answer_whole takes; NULL on an error. */
PyObject *write_last(PyObject *channel, PyObject *transport, PyObject *data);
PyObject *close_channel(PyObject *channel);
PyObject *set_close_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *set_accepted_type(PyObject *module, PyObject *accepted_type);
extern const char set_close_parts_doc[];
extern const char set_accepted_type_doc[];
PyObject *accepted_lost(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *serve_accepted(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *receiver(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char receiver_doc[];
extern const char serve_accepted_doc[];
extern const char accepted_lost_doc[];

#endif
