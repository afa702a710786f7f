"""The service suite: each bridge (and the web client) run as a systemd daemon.

- :mod:`.config`: INI files -> typed settings, one schema per service, merged over ``common.ini``;
- :mod:`.catalog`: a service's settings -> its bridge's settings object, by key name -> the bridge;
- :mod:`.notify`: the sd_notify protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING);
- :mod:`.logsetup`: logging to the journal with structured fields (see :mod:`indiredis.events`), or to stderr;
- :mod:`.daemon`: the shell that runs a bridge under that protocol;
- :mod:`.web`: the web client served by waitress, socket activation included;
- :mod:`.cli`: the ``indiredis-<service>`` entry points;
- :mod:`.examples`: the commented example INI files shipped in ``etc/``.
"""
