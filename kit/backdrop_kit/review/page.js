// The review page's script: a file of its own, as the page's policy allows no inline script. It never sees the
// review token: every request it makes carries the session cookie (HttpOnly) the first load set, and no token.
"use strict";
(() => {
  const statusLine = document.getElementById("status");
  const list = document.getElementById("uploads");
  const ordinal = (n) => (n === 1 ? "main" : `${n}${n === 2 ? "nd" : n === 3 ? "rd" : "th"}`);
  const credits = (n) => `${Number(n).toLocaleString("en", { maximumFractionDigits: 2 })} credit${n === 1 ? "" : "s"}`;

  function say(element, text, kind) {
    element.textContent = text;
    element.className = element.className.replace(/\b(busy|ok|error)\b/g, "").trim();
    if (kind) element.classList.add(kind);
  }

  async function api(path, body) {
    const options = { headers: {} };
    if (body !== undefined) {
      options.method = "POST";
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (_) {
      throw new Error("The review server did not answer: is `backdrop review` still running?");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const problem = new Error(data.error || `The review server answered ${response.status}.`);
      problem.details = data;
      throw problem;
    }
    return data;
  }

  const imageUrl = (key) => `/api/image?${new URLSearchParams({ key })}`;

  function element(tag, attributes = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function selectionText(selection) {
    if (!selection) return "nothing published yet";
    return `published: version ${selection.version}, variant${selection.variants.length === 1 ? "" : "s"} ` +
      `${selection.variants.join(", ")} of job ${selection.job_id.slice(0, 8)} (chosen by ${selection.chosen_by})`;
  }

  class Upload {
    constructor(job) {
      this.job = job;
      this.chosen = [];
      this.version = job.selection ? job.selection.version : 0;
      this.section = element("section", { class: "upload", tabindex: "0", "aria-labelledby": `title-${job.job_id}` });
      this.section.dataset.jobId = job.job_id;
      this.section.append(element("h2", { id: `title-${job.job_id}` }, job.source_key));
      this.meta = element("p", { class: "meta" });
      this.renditionsRow = element("div", { class: "renditions" });
      this.section.append(this.meta, this.images(), this.renditionsRow, this.actions());
      this.message = element("p", { class: "message", role: "status" });
      this.section.append(this.message);
      this.section.addEventListener("keydown", (event) => this.onKey(event));
      this.describe();
    }

    describe() {
      const job = this.job;
      const parts = [job.profile && job.profile !== "-" ? `profile ${job.profile}` : "no profile", job.status,
        `recorded ${new Date(job.recorded_at).toLocaleString()}`];
      if (job.reason) parts.push(`${job.reason}${job.reason_message ? `: ${job.reason_message}` : ""}`);
      parts.push(selectionText(job.selection));
      this.meta.textContent = `${parts.join(" · ")} · job `;
      this.meta.append(element("code", {}, job.job_id));
      const live = job.selection && job.selection.job_id === job.job_id ? job.selection.variants : [];
      this.variantButtons.forEach((button, index) => button.classList.toggle("live", live.includes(index + 1)));
      this.showRenditions();
    }

    // The published images' storefront sizes, each with the pixel size the browser finds in the file itself.
    showRenditions() {
      const selection = this.job.selection;
      const renditions = selection && selection.job_id === this.job.job_id ? selection.renditions || [] : [];
      this.renditionsRow.replaceChildren();
      this.renditionsRow.hidden = renditions.length === 0;
      if (!renditions.length) return;
      this.renditionsRow.append(element("h3", {}, "Renditions"));
      for (const rendition of renditions) {
        const name = rendition.key.split("/").pop();
        const figure = element("figure", { class: "rendition" });
        const caption = element("figcaption", {}, `${name} · ${rendition.spec}`);
        if (rendition.made) {
          const picture = element("img", { src: imageUrl(rendition.key), alt: `${rendition.spec} rendition of ${this.job.source_key}` });
          picture.addEventListener("load", () => {
            caption.textContent = `${name} · ${rendition.spec} · ${picture.naturalWidth}×${picture.naturalHeight} px`;
          });
          figure.append(picture);
        } else {
          figure.append(element("p", { class: "pending" }, "not made yet"));
        }
        figure.append(caption);
        this.renditionsRow.append(figure);
      }
    }

    images() {
      const row = element("div", { class: "images" });
      const original = element("figure", { class: "original" });
      original.append(element("img", { src: imageUrl(this.job.source_key), alt: `Original photo ${this.job.source_key}` }),
        element("figcaption", {}, "Original"));
      row.append(original);
      this.variantButtons = this.job.variants.map((key, index) => {
        const n = index + 1;
        const button = element("button", { type: "button", class: "variant", "aria-pressed": "false",
          "data-variant": String(n), title: `Variant ${n} (key ${n})` });
        button.append(element("img", { src: imageUrl(key), alt: `Variant ${n} of ${this.job.source_key}` }),
          element("span", { class: "number", "aria-hidden": "true" }, String(n)), element("span", { class: "order" }));
        button.addEventListener("click", () => this.toggle(n));
        row.append(button);
        return button;
      });
      if (!this.job.variants.length) row.append(element("p", { class: "empty" }, "No variants: this job has none to choose."));
      return row;
    }

    actions() {
      const bar = element("div", { class: "actions" });
      this.publishButton = element("button", { type: "button", class: "primary publish" }, "Publish");
      this.publishButton.disabled = true;
      this.publishButton.addEventListener("click", () => this.publish());
      const cost = this.job.retry_credits;
      const costText = cost === null ? "cost unknown" : credits(cost);
      this.retryButton = element("button", { type: "button", class: "retry" }, `Try again (${costText})`);
      this.retryButton.addEventListener("click", () => this.askRetry());
      this.confirm = element("span", { class: "confirm", role: "group", "aria-label": "Confirm trying again" });
      this.confirm.hidden = true;
      this.confirmYes = element("button", { type: "button", class: "confirm-yes" }, `Yes, spend up to ${costText}`);
      const no = element("button", { type: "button", class: "confirm-no" }, "Cancel");
      this.confirm.append(element("span", {}, "Generate new variants of this photo?"), this.confirmYes, no);
      this.confirmYes.addEventListener("click", () => this.retry());
      no.addEventListener("click", () => { this.confirm.hidden = true; this.retryButton.focus(); });
      bar.append(this.publishButton, this.retryButton, this.confirm);
      return bar;
    }

    toggle(n) {
      if (n > this.variantButtons.length) {
        say(this.message, `There is no variant ${n}: this upload has ${this.variantButtons.length}.`, "error");
        return;
      }
      const at = this.chosen.indexOf(n);
      if (at >= 0) this.chosen.splice(at, 1); else this.chosen.push(n);
      this.variantButtons.forEach((button, index) => {
        const position = this.chosen.indexOf(index + 1);
        button.setAttribute("aria-pressed", String(position >= 0));
        button.querySelector(".order").textContent = position >= 0 ? ordinal(position + 1) : "";
      });
      this.publishButton.disabled = this.chosen.length === 0;
      say(this.message, this.chosen.length ? `Chosen: variant ${this.chosen.join(", ")} (the first is the main image).` : "", "");
    }

    onKey(event) {
      if (event.altKey || event.ctrlKey || event.metaKey || event.target.closest(".actions")) return;
      if (/^[1-4]$/.test(event.key)) {
        event.preventDefault();
        this.toggle(Number(event.key));
      } else if (event.key === "Enter") {
        event.preventDefault();
        this.publish();
      }
    }

    busy(on) {
      this.publishButton.disabled = on || this.chosen.length === 0;
      this.retryButton.disabled = on;
      this.confirmYes.disabled = on;
    }

    async publish() {
      if (!this.chosen.length) {
        say(this.message, "Choose a variant first: click it or press its number.", "error");
        return;
      }
      const key = this.job.source_key;
      this.busy(true);
      say(statusLine, `Publishing ${key}…`, "busy");
      try {
        const result = await api("/api/select",
          { job_id: this.job.job_id, variants: this.chosen, expected_version: this.version });
        this.version = result.version;
        this.job.selection = { version: result.version, job_id: result.job_id, variants: result.variants,
          chosen_by: "person", published: result.published, renditions: [] };
        this.describe();
        const coming = result.renditions.length
          ? `; renditions on their way: ${result.renditions.map((key) => key.split("/").pop()).join(", ")}` : "";
        say(this.message, `Published version ${result.version}: ${result.published.join(", ")}${coming}`, "ok");
        say(statusLine, `Published ${key} (version ${result.version}).`, "ok");
      } catch (problem) {
        const reason = problem.details && problem.details.reason ? ` (${problem.details.reason})` : "";
        say(this.message, `Not published${reason}: ${problem.message}`, "error");
        say(statusLine, `Could not publish ${key}: ${problem.message}`, "error");
      } finally {
        this.busy(false);
      }
    }

    askRetry() {
      this.confirm.hidden = false;
      this.confirmYes.focus();
    }

    async retry() {
      const key = this.job.source_key;
      this.busy(true);
      say(statusLine, `Sending ${key} to be generated again…`, "busy");
      try {
        const result = await api("/api/retry", { job_id: this.job.job_id });
        const cost = result.credits === null ? "" : ` (up to ${credits(result.credits)})`;
        say(this.message, `Sent again${cost}: new variants appear as a new upload once generated; press Show to reload.`, "ok");
        say(statusLine, `${key} is being generated again.`, "ok");
      } catch (problem) {
        say(this.message, `Not tried again: ${problem.message}`, "error");
        say(statusLine, `Could not try ${key} again: ${problem.message}`, "error");
      } finally {
        this.confirm.hidden = true;
        this.busy(false);
      }
    }
  }

  function filters() {
    const query = new URLSearchParams({
      days: document.getElementById("days").value || "7",
      awaiting: document.getElementById("awaiting").checked ? "1" : "0",
    });
    const profile = document.getElementById("profile").value.trim();
    const status = document.getElementById("job-status").value;
    if (profile) query.set("profile", profile);
    if (status) query.set("status", status);
    return query;
  }

  async function load() {
    const query = filters();
    say(statusLine, "Loading uploads…", "busy");
    try {
      const data = await api(`/api/uploads?${query}`);
      document.getElementById("stack").textContent = `· stack ${data.stack}`;
      list.replaceChildren(...data.uploads.map((job) => new Upload(job).section));
      const what = query.get("awaiting") === "1" ? "awaiting review" : "recorded";
      const count = data.uploads.length;
      say(statusLine, count ? `${count} upload${count === 1 ? "" : "s"} ${what} in the last ${query.get("days")} days.`
        : `No uploads ${what} in the last ${query.get("days")} days.`, "ok");
    } catch (problem) {
      say(statusLine, `Could not load uploads: ${problem.message}`, "error");
    }
  }

  const days = new URLSearchParams(location.search).get("days");
  if (days) document.getElementById("days").value = days;
  document.getElementById("filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  document.getElementById("job-status").addEventListener("change", (event) => {
    // Only succeeded jobs await review: asking for failed or rejected ones means every one of them.
    if (event.target.value && event.target.value !== "succeeded") document.getElementById("awaiting").checked = false;
  });
  load();
})();
