"""The router's file edges: what reads the user's files and writes outputs.

* ``files``: opening inputs (regular files, size caps) and writing outputs
  (temporary file + rename); the only place files are opened.
* ``locate``: line numbers for fields of JSON, YAML and TOML documents.
* ``boundary``: validation messages, ``file:line: field: what was expected``.
* ``loading``: the accounts file into ``Account``s and a ``Policy``.
* ``events``: the event script, checked line by line.
* ``replay``: an event script through a ``Pool``, as output records.
"""
