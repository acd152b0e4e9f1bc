/* The rider's drop screen. Phone cameras take photos of several MB: scale to 1600 px before sending. */
(function () {
  var form = document.querySelector("[data-photo-form]");
  var input = form && form.querySelector("input[type=file]");
  if (!input) return;
  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    var label = form.querySelector("[data-photo-label]");
    if (label && file) label.textContent = "✓ " + file.name;
    if (!file || !window.DataTransfer || !window.createImageBitmap ||
        !/^image\/(jpeg|png|webp)$/.test(file.type) || file.size < 600000) return;
    createImageBitmap(file).then(function (img) {
      var scale = Math.min(1, 1600 / Math.max(img.width, img.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(img.width * scale);
      canvas.height = Math.round(img.height * scale);
      canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) {
        if (!blob) return;
        var dt = new DataTransfer();
        dt.items.add(new File([blob], "proof.jpg", { type: "image/jpeg" }));
        input.files = dt.files;
      }, "image/jpeg", 0.85);
    }).catch(function () {});
  });
})();
