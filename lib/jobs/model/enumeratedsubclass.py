"""`EnumeratedSubclass`: single-table polymorphism by a job-type enum."""

__all__ = ["EnumeratedSubclass"]

from jobs.errors import UnknownJobType


class EnumeratedSubclass(type):
    """Metaclass that registers each class under its ``class_job_type``.

    The first class of a hierarchy that uses it (or any class whose body
    sets ``context_class``: a new job family) gets a fresh ``_subclass``
    registry; every class whose body sets ``class_job_type`` is entered
    in it. A job type registered twice raises `ValueError` at class
    definition, naming both classes.
    """

    def __init__(cls, name, bases, namespace):
        if getattr(cls, "_subclass", None) is None or (
                "context_class" in namespace):
            cls._subclass = {}
        job_type = namespace.get("class_job_type")
        if job_type is not None:
            registered = cls._subclass.setdefault(job_type, cls)
            if registered is not cls:
                raise ValueError(
                    "%s already registered to %s."
                    % (job_type.name, registered.__name__))
        cls._register_subclass(cls)
        super().__init__(name, bases, namespace)

    def _register_subclass(cls, subclass):
        """Hook called for every class defined; does nothing by default."""

    def makeSubclass(cls, context):
        """Wrap `context` in the class registered for its ``job_type``.

        :raises UnknownJobType: when no class is registered for it.
        """
        try:
            subclass = cls._subclass[context.job_type]
        except KeyError:
            raise UnknownJobType(
                "%s row %s has job type %r, which no class is registered "
                "for." % (type(context).__name__, context.id,
                          context.job_type)) from None
        return subclass(context)
