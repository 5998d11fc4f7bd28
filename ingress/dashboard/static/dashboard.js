// The dashboard's only script: the copy button beside a key shown once. Everything else works without it.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const status = button.parentElement.querySelector(".copy-status");
  let copied = false;
  try {
    await navigator.clipboard.writeText(field.value);
    copied = true;
  } catch (_) {
    field.select();
    copied = document.execCommand("copy");
  }
  if (status) status.textContent = copied ? "Copied" : "Select the key and copy it";
});
