"""New connections made as copies of one made the usual way (a template).

A connection sets some sixty slots as it is made (``ServerHttpProtocol.__init__`` and its
mixins' ``_init_*``): all but two hold the same value in every connection of a worker
(its config, its loop, a shared timer or sink, a zero, a None). Behind a proxy that opens a
connection per request, making a connection was a seventh of a request's instructions. A
worker makes one template connection, never connected, and each new connection copies its
slots in one compiled call, then makes what is its own: its parser and its app kind's
object (``ServerHttpProtocol.copied``). (Measured: about 4% fewer instructions for a WSGI
request on a connection of its own, 6% for an ASGI one.)

A class that keeps state outside its slots (an instance ``__dict__``: the HTTP/2 and
uwsgi connection classes, made on the fly) is made the usual way, as is every class when
the compiled helpers are not in use: the copy's Python reference is slower than the set-up.
"""

from .compiled import compiled


def copy_slots_py(dst, src) -> None:
    """Give every slot of ``dst`` the value ``src``'s holds (unset where it is unset): the
    slots declared by ``__slots__`` in each class of their type's MRO."""
    cls = type(src)
    if type(dst) is not cls:
        raise TypeError("copy_slots: both objects must be of one type")
    for base in cls.__mro__:
        for name in _declared_slots(base):
            descriptor = base.__dict__[name]
            try:
                value = descriptor.__get__(src, cls)
            except AttributeError:
                try:
                    descriptor.__delete__(dst)
                except AttributeError:
                    pass
            else:
                descriptor.__set__(dst, value)


def _declared_slots(base: type) -> tuple:
    """The names of the slot descriptors ``base``'s own ``__slots__`` made."""
    slots = base.__dict__.get("__slots__", ())
    if isinstance(slots, str):
        slots = (slots,)
    names = []
    for name in slots:
        if name in ("__dict__", "__weakref__"):
            continue
        if name.startswith("__") and not name.endswith("__"):
            name = f"_{base.__name__.lstrip('_')}{name}"  # (a private name, as Python mangles it)
        names.append(name)
    return tuple(names)


def copy_of_py(template):
    """A new object of ``template``'s type, made as ``object.__new__`` makes it (no
    ``__init__``), with the slots ``template`` holds (``copy_slots``)."""
    copy = object.__new__(type(template))
    copy_slots(copy, template)
    return copy


copy_slots = compiled("copy_slots") or copy_slots_py
copy_of = compiled("copy_of") or copy_of_py
# Whether copies are worth making: the Python reference costs more than an ``__init__``.
COPIES_COMPILED = copy_slots is not copy_slots_py
