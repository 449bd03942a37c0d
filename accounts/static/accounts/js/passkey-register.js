// After django-otp-webauthn's script registers a passkey, go back to the devices page
// (the [data-passkey-done-url] element names it), where the new passkey is listed.
(function () {
  "use strict";

  document.addEventListener("otp_webauthn.register_complete", function () {
    var holder = document.querySelector("[data-passkey-done-url]");
    if (holder) {
      window.location.assign(holder.getAttribute("data-passkey-done-url"));
    }
  });
})();
