from ingress.engine.personal_data._old import *  # noqa: F403
from ingress.engine.personal_data._old import REDACTED_KEY, Scanner, detect_personal_data, text_categories  # noqa: F401
