/* The step editor: checks each step's config against its step type's JSON Schema as one types (Ajv, vendored),
   shows its SQL as code, and lets one pick dependencies by step name. Without JavaScript the plain JSON fields
   remain and are posted unchanged. No build step: plain browser JavaScript. */
"use strict";
(function () {
  // The page's schemas (pipelines/step_editor.py) are read once the document is parsed: this file loads in <head>.
  let schemas = null;
  let ajv = null;
  const compiled = {};

  function validatorFor(type) {
    if (schemas === null) {
      const node = document.getElementById("etl-step-schemas");
      schemas = node ? JSON.parse(node.textContent) : {};
      const Ajv = window.ajv2020;
      ajv = Ajv ? new Ajv({ allErrors: true, strict: false }) : null;
    }
    if (!ajv || !schemas[type]) return null;
    if (!compiled[type]) compiled[type] = ajv.compile(schemas[type]);
    return compiled[type];
  }

  function sibling(field, suffix) {
    const prefix = field.name.slice(0, field.name.lastIndexOf("-") + 1);
    return document.querySelector('[name="' + prefix + suffix + '"]');
  }

  function describe(error) {
    const where = error.instancePath ? error.instancePath.slice(1).replace(/\//g, ".") : "config";
    let message = error.message;
    if (error.params && error.params.additionalProperty) message = "unknown key '" + error.params.additionalProperty + "'";
    if (error.params && error.params.allowedValues) message += ": " + error.params.allowedValues.join(", ");
    if (error.params && error.params.missingProperty) message = "missing required key '" + error.params.missingProperty + "'";
    return where + ": " + message;
  }

  function check(textarea) {
    const status = textarea.parentElement.querySelector(".etl-config-status");
    const preview = textarea.parentElement.querySelector(".etl-config-sql");
    if (!status) return;
    const typeField = sibling(textarea, "step_type");
    const type = typeField ? typeField.value : "";
    let value;
    try {
      value = JSON.parse(textarea.value || "{}");
    } catch (error) {
      status.className = "etl-config-status bad";
      status.textContent = "Not valid JSON: " + error.message;
      preview.hidden = true;
      return;
    }
    const validate = validatorFor(type);
    if (!validate) {
      status.className = "etl-config-status";
      status.textContent = type ? "" : "Choose a step type to check the config.";
    } else if (validate(value)) {
      status.className = "etl-config-status ok";
      status.textContent = "✓ Matches the " + type + " step schema.";
    } else {
      status.className = "etl-config-status bad";
      status.textContent = validate.errors.slice(0, 8).map(describe).join("\n");
    }
    const sql = value && typeof value === "object" ? value.sql || value.query : "";
    preview.textContent = typeof sql === "string" ? sql : "";
    preview.hidden = !preview.textContent;
  }

  function initDependencies(select) {
    const textarea = select.parentElement.querySelector("textarea.etl-step-deps-json");
    const own = sibling(textarea, "id");
    Array.from(select.options).forEach((option) => {
      if (own && option.value === own.value) option.remove(); // a step does not depend on itself
    });
    const help = select.parentElement.querySelector(".etl-deps-help");
    let chosen;
    try {
      chosen = JSON.parse(textarea.value || "[]");
    } catch (error) {
      return; // leave the JSON as typed: the form's own error says what is wrong
    }
    if (!Array.isArray(chosen)) return;
    const known = new Set(Array.from(select.options, (option) => option.value));
    if (!chosen.every((id) => known.has(String(id)))) return; // an id not offered: keep the JSON visible
    Array.from(select.options).forEach((option) => { option.selected = chosen.includes(option.value); });
    select.addEventListener("change", () => {
      textarea.value = JSON.stringify(Array.from(select.selectedOptions, (option) => option.value));
    });
    select.hidden = false;
    if (help) help.hidden = false;
    textarea.hidden = true;
  }

  function init(root) {
    root.querySelectorAll("textarea.etl-step-config").forEach((textarea) => {
      if (textarea.dataset.etlReady || textarea.name.includes("__prefix__")) return;
      textarea.dataset.etlReady = "1";
      textarea.addEventListener("input", () => check(textarea));
      const typeField = sibling(textarea, "step_type");
      if (typeField) typeField.addEventListener("change", () => check(textarea));
      check(textarea);
    });
    root.querySelectorAll("select.etl-step-deps").forEach((select) => {
      if (select.dataset.etlReady) return;
      select.dataset.etlReady = "1";
      initDependencies(select);
    });
  }

  document.addEventListener("DOMContentLoaded", () => init(document));
  document.addEventListener("formset:added", (event) => init(event.target));
})();
