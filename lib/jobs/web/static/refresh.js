// Reload the page every data-refresh seconds while the box is ticked
// (remembered for the session). No framework, nothing else.
(function () {
  var box = document.getElementById("refresh");
  var seconds = parseInt(document.body.dataset.refresh, 10);
  if (!box || !seconds) { return; }
  box.checked = sessionStorage.getItem("jobs-refresh") === "on";
  box.addEventListener("change", function () {
    sessionStorage.setItem("jobs-refresh", box.checked ? "on" : "off");
    if (box.checked) { location.reload(); }
  });
  setInterval(function () { if (box.checked) { location.reload(); } },
              seconds * 1000);
})();
