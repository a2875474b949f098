// Starts Swagger UI on /docs. A file of its own, since the page's CSP allows no inline script.
globalThis.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#docs",
  deepLinking: true,
  // The default sends the document to validator.swagger.io for a badge.
  validatorUrl: null,
});
