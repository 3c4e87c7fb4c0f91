"""One exception type for every mistake a user can fix."""


class LessonError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do.

    The CLI prints it as one line without a traceback; notebooks show it as-is.
    """
