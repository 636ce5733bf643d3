"""The API's routers, one per concern, all under ``/api/v1`` (see :mod:`controller.http.app`)."""
