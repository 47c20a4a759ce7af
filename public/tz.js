// Reports the browser's IANA time zone to the server, which aligns the
// usage chart's buckets to it when the URL names no zone.
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    // Zone names are letters, digits and "/_+-", all safe in a cookie as is.
    if (zone && /^[A-Za-z0-9_\/+\-]+$/.test(zone)) {
      document.cookie = "casola_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) {
    // Without Intl the server falls back to the organization's zone.
  }
})();
