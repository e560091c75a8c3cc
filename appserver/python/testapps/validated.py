"""basic.app wrapped in wsgiref.validate.validator (run the worker with -W error)."""
from wsgiref.validate import validator

import basic

app = validator(basic.app)
