// Starts Swagger UI on the API reference page (a static file: the page has no inline script).
(function () {
  "use strict";
  var node = document.getElementById("api-reference");
  if (!node || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.SwaggerUIBundle({
    url: node.getAttribute("data-spec-url"),
    domNode: node,
    deepLinking: true,
    tryItOutEnabled: false,
    validatorUrl: null  // no badge fetched from validator.swagger.io: the page loads nothing from outside
  });
})();
