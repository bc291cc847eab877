// reportd's own: starts Swagger UI on this API's document. A separate file, not an
// inline script, so the page's Content-Security-Policy can forbid inline scripts.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No badge: it would send the document to validator.swagger.io.
    validatorUrl: null,
  });
});
