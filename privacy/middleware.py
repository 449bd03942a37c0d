class GlobalPrivacyControlMiddleware:
    """Reads the Global Privacy Control signal (``Sec-GPC: 1``) on every request.

    Pages show "Opt-Out Request Honored" while it is present, and responses vary
    on ``Sec-GPC``. Recording the opt-out against the signed-in user, and acting on
    it (no sale or sharing beyond Microsoft), is not yet built.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.gpc = request.headers.get("Sec-GPC", "").strip() == "1"
        response = self.get_response(request)
        if request.gpc:
            response["Vary"] = ", ".join(filter(None, [response.get("Vary"), "Sec-GPC"]))
        return response
