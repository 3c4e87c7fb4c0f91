"""mnli_lesson: the package behind the MNLI fine-tuning notebooks."""

from mnli_lesson.core import LABELS
from mnli_lesson.errors import LessonError

__all__ = ["LABELS", "LessonError"]
__version__ = "0.1.0"
