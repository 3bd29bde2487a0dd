// Pilotplan's own JavaScript: only what HTMX attributes cannot say. Every flow works without it.
document.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  const message = status === 403 ? "You may not do that." : status === 404 ? "That no longer exists." : "Something went wrong; nothing was saved. Please reload.";
  window.alert(message);
});
