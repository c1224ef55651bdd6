"""Impasto's editor-independent plugin core: what the Krita and the GIMP plugin share, in plain Python.

No editor API is imported here (each plugin keeps the calls to its editor, and its UI, in its own thin modules):

- ``geometry``: ``Rect`` (editor pixels) and ``default_positions`` (where new keypoints go);
- ``deps``: can the editor's Python load pyzmq and the client (and what to run when not);
- ``daemon``: ``serve_command`` (how to start the daemon, as ``impasto install-plugin`` recorded it);
- ``servers``: the "server" setting -- the local daemon or a paired remote server by name -- and connecting to it;
- ``keypoints``: pairing the artist's content and style keypoints (by number or in order);
- ``jobs``: ``JobTracker`` (one job followed event by event, for a UI driven by a timer) and ``wait_for_result``
  (one job followed to its end, for a blocking plug-in);
- ``errors``: ``PluginError``, a problem the artist can fix (shown, never as a traceback).

``impasto install-plugin krita|gimp`` copies this package into the plugin's ``vendor/`` folder beside
``impasto_protocol`` and pyzmq; each plugin puts that folder on ``sys.path`` when it loads.
"""
