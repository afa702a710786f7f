"""Who may do what: the one place requests are authorised, and the login and logout pages.

Every POST is checked twice, with or without logins: it must come from the page's own origin when
the browser says where it comes from (``Origin``, else ``Referer``: the same scheme, host and port
as the request's, see :func:`.request.same_origin`), and carry the CSRF token of the page (the
session's with logins; without, the random token of the ``indiredis_csrf`` cookie, which a foreign
page can neither read nor set).  Passwords, sessions and the login limiter are :mod:`.auth`'s.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import redis

from ..errors import FormError
from ..store.keys import KeySpace
from . import pages
from .auth import SESSION_SECONDS, LoginLimiter, Sessions, User, check_login, same_token
from .forms import read_form
from .request import Request, Visitor
from .responses import Response, redirect, text_response

log = logging.getLogger(__name__)

SESSION_COOKIE = "indiredis_session"
CSRF_COOKIE = "indiredis_csrf"
LOGIN_BODY = 4096  # bytes: a login form is small; a longer one is refused unparsed (waitress read it)


class Access:
    """Logins (or none), sessions, CSRF tokens and the login limiter of one web client."""

    def __init__(
        self,
        users: dict[str, User] | None,
        rconn: redis.Redis,
        keys: KeySpace,
        session_seconds: int = SESSION_SECONDS,
        sessions: Sessions | None = None,
    ) -> None:
        if sessions is None and users is not None:
            sessions = Sessions(users, rconn, keys, session_seconds)
        self.sessions = sessions  # given: shared with the other sites' apps (see .sites)
        self.limiter = LoginLimiter()

    @property
    def logins(self) -> bool:
        """Whether users must log in (make_wsgi_app with users)."""
        return self.sessions is not None

    def visitor(self, req: Request) -> Visitor:
        """Who makes ``req`` (one session lookup); without logins, the browser's CSRF token, or a
        new one to set with the page."""
        if self.sessions is None:
            token = req.cookie(CSRF_COOKIE)
            if not token or len(token) > 64:
                return Visitor(csrf=secrets.token_urlsafe(24), new_csrf=True)
            return Visitor(csrf=token)
        found = self.sessions.lookup(req.cookie(SESSION_COOKIE))
        if found is None:
            return Visitor(logins=True)
        return Visitor(found[0], found[1], logins=True)

    def refusal(self, req: Request, *, write: bool, api: bool) -> Response | None:
        """None to let the request through, or the refusal: log in first; observers may only watch."""
        if self.sessions is None:
            return None  # logins are off (make_wsgi_app without users, as the original package)
        user = req.visitor.user
        if user is None:
            if not write and not api:
                return redirect(req.root + "/login")
            return text_response("401 Unauthorized", "log in first")
        if write and not user.may_set:
            return text_response("403 Forbidden", "this user may watch but not set")
        return None

    def csrf_ok(self, req: Request) -> bool:
        """Whether a POST carries the page's CSRF token."""
        token = req.environ.get("HTTP_X_CSRF_TOKEN") or req.form_value("csrf")
        if self.sessions is None:
            return same_token(token, req.cookie(CSRF_COOKIE))
        return req.visitor.user is not None and same_token(token, req.visitor.csrf)

    def page_cookies(self, req: Request, response: Response) -> Response:
        """``response`` (a page carrying the CSRF token), setting the new token's cookie if any."""
        if req.visitor.new_csrf and response.status.startswith("200"):
            response.set_cookie(CSRF_COOKIE, req.visitor.csrf, req.cookie_path)
        return response

    def still_allowed(self, req: Request) -> Callable[[], bool]:
        """For a long answer (an event stream): whether its session still lives; a session ended
        (logout elsewhere, expiry) ends the stream, a store away does not."""
        sessions, cookie = self.sessions, req.cookie(SESSION_COOKIE)

        def allowed() -> bool:
            try:
                return sessions is None or sessions.lookup(cookie) is not None
            except redis.RedisError:  # the store is away: the page is told so (status) and waits
                return True

        return allowed

    # -- the pages --------------------------------------------------------------------------------
    def login_page(self, req: Request, problem: str = "", status: str = "200 OK") -> Response:
        """The login form, with what went wrong last."""
        viewer = pages.Viewer(root=req.root, logins=True)
        return Response(status, pages.page("Log in", pages.login_form(problem, req.root), viewer))

    def login(self, req: Request) -> Response:
        """Check the login form; a session cookie and the device list, or the form again."""
        assert self.sessions is not None
        try:
            fields, _ = read_form(req.environ, LOGIN_BODY)
        except FormError as exc:
            return text_response("400 Bad Request", str(exc))
        name, password = (fields.get("user") or [""])[0], (fields.get("password") or [""])[0]
        address = req.environ.get("REMOTE_ADDR", "")
        keys = (f"address:{address}", f"user:{name[:64]}")  # a user name has at most 64 characters
        if self.limiter.blocked(*keys):
            log.warning("web login refused for %r from %s: too many failures", name[:64], address)
            refused = self.login_page(
                req, "Too many failed logins: wait a few minutes.", "429 Too Many Requests"
            )
            refused.headers.append(("Retry-After", "300"))
            return refused
        user = check_login(self.sessions.users, name, password)
        if user is None:
            self.limiter.failed(*keys)
            log.warning("web login failed for %r from %s", name[:64], address)
            return self.login_page(req, "Wrong user or password.", "401 Unauthorized")
        log.info("web login: %s (%s) from %s", user.name, user.role, address)
        session = self.sessions.issue(user)
        return redirect(req.root + "/").set_cookie(SESSION_COOKIE, session, req.cookie_path, secure=req.https)

    def logout(self, req: Request) -> Response:
        """End the session on the server, forget the cookie, and show the login page."""
        assert self.sessions is not None
        cookie = req.cookie(SESSION_COOKIE)
        found = self.sessions.lookup(cookie)
        self.sessions.end(cookie)
        if found is not None:
            log.info("web logout: %s", found[0].name)
        return redirect(req.root + "/login").set_cookie(SESSION_COOKIE, "", req.cookie_path, max_age=0)
