// Counts without reloading the page: the counter form is posted with fetch,
// the CSRF token (the form's own _csrf field) in the X-CSRF-Token header.
// Without JavaScript the form still works; the browser then shows the JSON.
const form = document.getElementById("counter");
if (form) {
  const out = document.getElementById("count");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const res = await fetch(form.action, {
      method: "POST",
      headers: { "X-CSRF-Token": form.elements._csrf.value },
      credentials: "same-origin",
    });
    if (!res.ok) {
      out.textContent = "error " + res.status;
      return;
    }
    out.textContent = (await res.json()).count;
  });
}
