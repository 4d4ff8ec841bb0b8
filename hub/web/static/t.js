/* hub t.js: sends a site's WhatsApp links through the hub's tracked link, so the chat
 * that follows carries the visit's source (UTM tags, click ids, landing page) into the CRM.
 *
 *   <script src="https://hub.example.com/t.js" data-link="spring-sale" async></script>
 *
 * Every <a> pointing at wa.me, api.whatsapp.com/send or whatsapp://send is rewritten to
 * https://hub.example.com/l/spring-sale?utm_...; an <a data-hub-link="other-slug"> uses
 * its own tracked link. The tags of the page the visitor landed on are kept for the
 * browser session, so a click two pages later still carries them. No cookies are set.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) { return; }
  var base = script.src.replace(/\/t\.js(?:[?#].*)?$/, "");
  var defaultSlug = script.getAttribute("data-link") || "";
  var TAGS = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
              "gclid", "yclid", "fbclid"];
  var KEY = "hub_touch";
  var WHATSAPP = /^(?:https?:\/\/(?:wa\.me|api\.whatsapp\.com\/send|(?:www\.)?whatsapp\.com\/send)|whatsapp:\/\/send)/i;
  var MAX = 200; // per tag; the hub keeps 255
  var URL_BUDGET = 3500; // servers refuse request lines past 4 KB (gunicorn: 4094 bytes)

  function cut(value, limit) { return String(value || "").slice(0, limit || MAX); }

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) {
        try { return decodeURIComponent(parts[i].slice(eq + 1)); } catch (e) { return ""; }
      }
    }
    return "";
  }

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  // The visit's source: this page's tags if it has any, else those of the page the
  // visitor landed on earlier in this browser session, else this page as the landing.
  function touch() {
    var query = new URLSearchParams(window.location.search);
    var found = {}, tagged = false;
    TAGS.forEach(function (name) {
      var value = query.get(name);
      if (value) { found[name] = cut(value); tagged = true; }
    });
    var store = storage(), kept = null;
    try { kept = store && JSON.parse(store.getItem(KEY) || "null"); } catch (e) { kept = null; }
    if (!tagged && kept && typeof kept === "object") { return kept; }
    found.lp = cut(window.location.href, 1000);
    found.ref = cut(document.referrer, 500);
    try { if (store) { store.setItem(KEY, JSON.stringify(found)); } } catch (e) { /* private mode */ }
    return found;
  }

  var source = touch();

  function trackedUrl(slug) {
    var query = new URLSearchParams();
    Object.keys(source).forEach(function (name) {
      if (source[name] && (TAGS.indexOf(name) >= 0 || name === "lp" || name === "ref")) {
        query.set(name, cut(source[name], 1000));
      }
    });
    var ga = cookie("_ga"), ym = cookie("_ym_uid"), rs = cookie("roistat_visit");
    if (ga) { query.set("_ga", cut(ga, 100)); }
    if (ym) { query.set("_ym_uid", cut(ym, 40)); }
    if (rs) { query.set("roistat_visit", cut(rs, 20)); }
    var head = base + "/l/" + encodeURIComponent(slug) + "?";
    // Long, non-Latin URLs triple when encoded: give up the referrer, then the landing
    // page, rather than the tags.
    ["ref", "lp"].forEach(function (name) {
      if ((head + query.toString()).length > URL_BUDGET) { query.delete(name); }
    });
    return head + query.toString();
  }

  function rewrite(anchor) {
    var href = anchor.getAttribute("href") || "";
    if (!WHATSAPP.test(href)) { return; }
    var slug = anchor.getAttribute("data-hub-link") || defaultSlug;
    if (!slug) { return; }
    anchor.setAttribute("href", trackedUrl(slug));
  }

  function rewriteAll() {
    var anchors = document.querySelectorAll("a[href]");
    for (var i = 0; i < anchors.length; i++) { rewrite(anchors[i]); }
  }

  // Links added later (menus, chat widgets) are caught when clicked.
  document.addEventListener("click", function (event) {
    var node = event.target;
    while (node && node.nodeType === 1 && node.tagName !== "A") { node = node.parentNode; }
    if (node && node.nodeType === 1 && node.getAttribute("href")) { rewrite(node); }
  }, true);

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", rewriteAll);
  } else {
    rewriteAll();
  }
})();
