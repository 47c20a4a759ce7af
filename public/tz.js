// Reports the browser's IANA time zone to the server, which aligns the
// usage chart's buckets to it when the URL names no zone.
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) {
      document.cookie = "casola_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) {
    // Without Intl the server falls back to the organization's zone.
  }
})();
