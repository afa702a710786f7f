// indiredis web client: the theme (light, dark, red night vision), chosen with one click and
// remembered per browser; loaded in <head> so that a dark page never flashes white.
(function () {
  "use strict";
  var themes = ["light", "dark", "red"];
  var names = {light: "Light", dark: "Dark", red: "Red (night)"};
  var root = document.documentElement;
  function stored() {
    try { return window.localStorage.getItem("indiredis-theme"); } catch (e) { return null; }
  }
  function apply(theme) {
    if (themes.indexOf(theme) < 0) { theme = "light"; }
    root.setAttribute("data-theme", theme);
    var button = document.getElementById("theme");
    if (button) { button.textContent = "Theme: " + names[theme]; }
    return theme;
  }
  var current = apply(stored() ||
    (window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
  document.addEventListener("DOMContentLoaded", function () {
    apply(current);
    var button = document.getElementById("theme");
    if (!button) { return; }
    button.addEventListener("click", function () {
      current = apply(themes[(themes.indexOf(current) + 1) % themes.length]);
      try { window.localStorage.setItem("indiredis-theme", current); } catch (e) { /* private mode */ }
    });
  });
})();
