#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yahealthy_crm.settings")
    from django.core.management import execute_from_command_line

    from yahealthy_crm.bootstrap import local_environment_prepare

    local_environment_prepare()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
