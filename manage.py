#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

A missing or bad setting prints one line, ``portal: <SETTING>: <what is wrong>``, and exits 2
(userportal/startup.py); ``--traceback`` shows the whole error.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "userportal.settings")
    from userportal.startup import run_command

    sys.exit(run_command(sys.argv))


if __name__ == "__main__":
    main()
