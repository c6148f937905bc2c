"""The web portal: server-rendered pages over the admin API's operations and roles.

Pages are Jinja2 templates served by FastAPI routes in the API process, mounted at ``/``;
a little of our own JavaScript (``static/portal.js``) refreshes live data in place. Every
page acts through the API's own dependencies and route functions, so the portal has no
permission system of its own: what a login may not do through ``/v1`` it may not do here.
"""

from __future__ import annotations

from softswitch.portal.pages import ASSETS, mount

__all__ = ["ASSETS", "mount"]
