"""pytest plugin loaded first (`-p tests.bootstrap` in pyproject): the local environment the entry
points prepare (secret, embedded database) exists before pytest-django reads the settings."""

from yahealthy_crm.bootstrap import local_environment_prepare

local_environment_prepare()
