// Import page: drag and drop a file onto the drop zone, and upload with a progress bar
// (XMLHttpRequest upload progress). Without JavaScript the form posts as usual.
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form) return;
  var zone = document.getElementById("drop-zone");
  var input = document.getElementById("import-file");
  var progress = document.getElementById("import-progress");
  var result = document.getElementById("import-result");

  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      zone.querySelector("p").textContent = "Chosen: " + input.files[0].name;
    }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) data.set(event.submitter.name, event.submitter.value);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    progress.hidden = false;
    progress.value = 0;
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.addEventListener("load", function () {
      progress.value = 100;
      // The server renders the fragment (escaped by Django's templates).
      result.innerHTML = xhr.responseText;
    });
    xhr.addEventListener("error", function () {
      result.textContent = "The upload failed; check your connection and try again.";
    });
    xhr.send(data);
  });
})();
