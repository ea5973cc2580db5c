"""Error pages for people, JSON errors for the API; never a stack trace to either."""
from __future__ import annotations

from flask import jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from helpdesk_web.bounds import too_large

SERVER_ERROR = "the server had a problem with this request; it is logged, please try again"


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def register(app):
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        message = _("The form has expired or is not valid: reload the page and try again.")
        return render_template("error.html", code=400, message=message), 400

    # One handler for every HTTP error, 500 included (Flask turns an unhandled exception
    # into InternalServerError after logging it).
    @app.errorhandler(HTTPException)
    def http_error(error):
        code = error.code or 500
        if code >= 500:
            message = SERVER_ERROR if _wants_json() else _(
                "The server had a problem with this request; it is logged, please try again.")
        elif code == 413:  # werkzeug's own words do not say what the limit is
            message = too_large(app.config["MAX_CONTENT_LENGTH"])
        else:
            message = error.description
        if _wants_json():
            response = jsonify(error=message)
            if code == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="helpdesk"'
        else:
            response = app.make_response(render_template("error.html", code=code,
                                                          message=message))
        response.status_code = code
        return response
