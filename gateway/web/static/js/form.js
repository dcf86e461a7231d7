// The visit form: clinic type-ahead, proposed and sold devices, date and
// time, notes, the page's own checks, and the API's field errors shown next
// to their fields.

import { formatDay, fromLocalInput, newVisitID, toLocalInput, toRFC3339 } from './format.js';

// MAX_NOTES is the gateway's limit per notes field. The textareas' maxlength
// counts UTF-16 code units and the gateway counts code points, so a note
// the textarea accepts is never too long for the gateway.
const MAX_NOTES = 4000;
const MAX_OPTIONS = 30;
const RECENT_CLINICS = 8;
// A device filter is offered once the chips no longer fit on one screen.
const FILTER_FROM_DEVICES = 12;
// The phone's clock may run a little ahead of the minute shown in the field.
const FUTURE_SLACK_MS = 60 * 1000;
const EARLIEST_YEAR = 2000;

// FIELDS are the API's field names that have an error line in the form.
const FIELDS = ['clientId', 'proposedDevices', 'soldDevices', 'dateTime', 'clientNotes', 'additionalNotes'];

const $ = (id) => document.getElementById(id);

// normalize makes matching ignore case, accents and punctuation, so "dusseldorf"
// finds "Düsseldorf" and "Keller, Graz" finds "Praxis Dr. Keller" in Graz.
function normalize(text) {
  return text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
}

function clinicLabel(clinic) {
  return clinic.city ? `${clinic.name}, ${clinic.city}` : clinic.name;
}

export class VisitForm {
  // hooks: {save(payload, fixing) -> Promise<{state, item, message}>,
  //         lastVisit(clientId) -> payload or null, recentClinicIDs() -> ids,
  //         userID() -> the logged-in user's id}
  constructor(hooks) {
    this.hooks = hooks;
    this.form = $('visit-form');
    this.clinicInput = $('clinic');
    this.options = $('clinic-options');
    this.proposedBox = $('proposed');
    this.soldBox = $('sold');
    this.filter = $('device-filter');
    this.timeInput = $('visit-time');
    this.clientNotes = $('client-notes');
    this.additionalNotes = $('additional-notes');
    this.saveButton = $('save');
    this.sameDevices = $('same-devices');

    this.clients = [];
    this.clientsByID = new Map();
    this.devices = [];
    this.clinic = null;
    this.proposed = [];
    this.sold = [];
    this.shown = [];
    this.active = -1;
    this.lastDevices = null;
    this.fixing = null;
    this.saving = false;
    this.timeEdited = false;

    this.bind();
    this.resetTime();
  }

  bind() {
    this.clinicInput.addEventListener('input', () => {
      this.clinic = null;
      this.status('', '');
      this.updateSameDevices();
      this.openOptions();
    });
    this.clinicInput.addEventListener('focus', () => {
      if (!this.clinicInput.value) this.openOptions();
    });
    this.clinicInput.addEventListener('blur', () => this.closeOptions());
    this.clinicInput.addEventListener('keydown', (e) => this.onClinicKey(e));
    // Keep the focus in the input while an option is tapped.
    this.options.addEventListener('mousedown', (e) => e.preventDefault());
    this.options.addEventListener('click', (e) => {
      const option = e.target.closest('li[data-index]');
      if (option) this.choose(this.shown[Number(option.dataset.index)]);
    });

    this.proposedBox.addEventListener('change', (e) => this.onProposed(e.target));
    this.soldBox.addEventListener('change', (e) => this.onSold(e.target));
    this.filter.addEventListener('input', () => this.filterDevices());
    this.sameDevices.addEventListener('click', () => this.applyLastDevices());

    this.timeInput.addEventListener('input', () => {
      this.timeEdited = true;
      this.setError('dateTime', '');
    });
    for (const [area, field] of [[this.clientNotes, 'clientNotes'], [this.additionalNotes, 'additionalNotes']]) {
      area.addEventListener('input', () => {
        this.updateCounter(area, field);
        this.setError(field, '');
      });
    }

    // Enter in a one-line field never saves: the Enter or Go key of a phone's
    // keyboard is easy to hit before the visit is complete. keypress is
    // blocked too, because it is what starts the browser's implicit
    // submission.
    const blockEnter = (e) => {
      if (e.key === 'Enter' && e.target.tagName === 'INPUT') e.preventDefault();
    };
    this.form.addEventListener('keydown', blockEnter);
    this.form.addEventListener('keypress', blockEnter);
    this.form.addEventListener('submit', (e) => this.submit(e));
    $('cancel-fix').addEventListener('click', () => {
      this.reset();
      this.status('The visit stays in the list as not accepted.', 'queued');
    });
  }

  setLookups({ clients, devices }) {
    this.clients = clients.map((client) => ({
      client,
      key: normalize(`${client.name} ${client.city} ${client.id}`),
      name: normalize(client.name),
    }));
    this.clientsByID = new Map(clients.map((c) => [c.id, c]));
    this.devices = devices;
    if (this.clinic) this.clinic = this.clientsByID.get(this.clinic.id) || this.clinic;
    this.renderDevices();
  }

  // Clinic type-ahead, after the WAI-ARIA combobox pattern with a listbox.

  matches(query) {
    const tokens = normalize(query).split(' ').filter(Boolean);
    if (tokens.length === 0) {
      return this.hooks.recentClinicIDs().slice(0, RECENT_CLINICS)
        .map((id) => this.clientsByID.get(id)).filter(Boolean);
    }
    const found = this.clients.filter((entry) => tokens.every((t) => entry.key.includes(t)));
    const first = tokens[0];
    const rank = (entry) => {
      if (entry.name.startsWith(first)) return 0;
      if (entry.name.includes(` ${first}`)) return 1;
      return 2;
    };
    found.sort((a, b) => rank(a) - rank(b) || a.client.name.localeCompare(b.client.name));
    return found.map((entry) => entry.client);
  }

  openOptions() {
    const query = this.clinicInput.value;
    const found = this.matches(query);
    this.shown = found.slice(0, MAX_OPTIONS);
    this.active = -1;

    const items = this.shown.map((clinic, i) => {
      const li = document.createElement('li');
      li.id = `clinic-option-${i}`;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', 'false');
      li.dataset.index = String(i);
      const name = document.createElement('span');
      name.textContent = clinic.name;
      const city = document.createElement('span');
      city.className = 'city';
      city.textContent = clinic.city;
      li.append(name, city);
      return li;
    });
    if (found.length > MAX_OPTIONS) {
      items.push(this.note(`${found.length - MAX_OPTIONS} more: keep typing to narrow the list`));
    }
    if (found.length === 0 && query.trim()) {
      items.push(this.note(this.clients.length ? 'No clinic matches.' : 'The clinic list is not loaded yet. Connect once to load it.'));
    }
    this.options.replaceChildren(...items);
    this.options.hidden = items.length === 0;
    this.clinicInput.setAttribute('aria-expanded', String(!this.options.hidden));
    this.clinicInput.removeAttribute('aria-activedescendant');
  }

  note(text) {
    const li = document.createElement('li');
    li.className = 'more';
    li.setAttribute('role', 'option');
    li.setAttribute('aria-disabled', 'true');
    li.textContent = text;
    return li;
  }

  closeOptions() {
    this.options.hidden = true;
    this.clinicInput.setAttribute('aria-expanded', 'false');
    this.clinicInput.removeAttribute('aria-activedescendant');
  }

  onClinicKey(e) {
    switch (e.key) {
      case 'ArrowDown':
      case 'ArrowUp': {
        e.preventDefault();
        if (this.options.hidden) this.openOptions();
        if (this.shown.length === 0) return;
        const step = e.key === 'ArrowDown' ? 1 : -1;
        this.highlight((this.active + step + this.shown.length) % this.shown.length);
        return;
      }
      case 'Enter':
        // Enter picks a clinic; it never submits the form from this field.
        e.preventDefault();
        if (this.options.hidden) return;
        if (this.active >= 0) this.choose(this.shown[this.active]);
        else if (this.shown.length === 1) this.choose(this.shown[0]);
        return;
      case 'Escape':
        this.closeOptions();
        return;
      default:
    }
  }

  highlight(index) {
    this.active = index;
    for (const li of this.options.querySelectorAll('li[data-index]')) {
      li.setAttribute('aria-selected', String(Number(li.dataset.index) === index));
    }
    const li = $(`clinic-option-${index}`);
    this.clinicInput.setAttribute('aria-activedescendant', li.id);
    li.scrollIntoView({ block: 'nearest' });
  }

  choose(clinic) {
    this.clinic = clinic;
    this.clinicInput.value = clinicLabel(clinic);
    this.closeOptions();
    this.setError('clientId', '');
    this.updateSameDevices();
  }

  // Devices. Sold devices are offered only among the proposed ones, in the
  // order they were proposed, so the page cannot build a sold device that
  // was not proposed.

  renderDevices() {
    const known = new Set(this.devices.map((d) => d.id));
    this.proposed = this.proposed.filter((id) => known.has(id));
    this.sold = this.sold.filter((id) => this.proposed.includes(id));
    this.proposedBox.replaceChildren(...this.devices.map((d) => this.chip('proposed', d, this.proposed.includes(d.id))));
    this.filter.hidden = this.devices.length <= FILTER_FROM_DEVICES;
    this.filterDevices();
    this.renderSold();
  }

  renderSold() {
    const byID = new Map(this.devices.map((d) => [d.id, d]));
    const chips = this.proposed.map((id) => byID.get(id)).filter(Boolean)
      .map((d) => this.chip('sold', d, this.sold.includes(d.id)));
    this.soldBox.replaceChildren(...chips);
    $('sold-empty').hidden = chips.length > 0;
  }

  chip(name, device, checked) {
    const label = document.createElement('label');
    label.className = 'chip';
    label.dataset.name = normalize(device.name);
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.name = name;
    input.value = String(device.id);
    input.checked = checked;
    const text = document.createElement('span');
    text.textContent = device.name;
    label.append(input, text);
    return label;
  }

  onProposed(input) {
    const id = Number(input.value);
    if (input.checked) {
      if (!this.proposed.includes(id)) this.proposed.push(id);
    } else {
      this.proposed = this.proposed.filter((p) => p !== id);
      this.sold = this.sold.filter((s) => s !== id);
    }
    this.renderSold();
    this.setError('proposedDevices', '');
    this.setError('soldDevices', '');
  }

  onSold(input) {
    const id = Number(input.value);
    if (input.checked && !this.proposed.includes(id)) {
      input.checked = false;
      return;
    }
    this.sold = this.sold.filter((s) => s !== id);
    if (input.checked) this.sold.push(id);
    this.setError('soldDevices', '');
  }

  filterDevices() {
    const query = normalize(this.filter.value);
    for (const chip of this.proposedBox.children) {
      const checked = chip.querySelector('input').checked;
      chip.hidden = Boolean(query) && !checked && !chip.dataset.name.includes(query);
    }
  }

  updateSameDevices() {
    const last = this.clinic && this.hooks.lastVisit(this.clinic.id);
    this.lastDevices = last && last.proposedDevices.length ? last : null;
    this.sameDevices.hidden = !this.lastDevices;
    if (this.lastDevices) {
      this.sameDevices.textContent = `Same devices as my last visit here (${formatDay(new Date(last.dateTime))})`;
    }
  }

  // applyLastDevices proposes the devices of the last visit to this clinic.
  // Sold devices are left for the salesman to mark, because a sale is what
  // happened at this visit, not at the last one.
  applyLastDevices() {
    if (!this.lastDevices) return;
    const known = new Set(this.devices.map((d) => d.id));
    this.proposed = this.lastDevices.proposedDevices.filter((id) => known.has(id));
    this.sold = [];
    this.filter.value = '';
    this.renderDevices();
    this.status(`Proposed devices copied from the visit of ${formatDay(new Date(this.lastDevices.dateTime))}. Mark what was sold.`, '');
  }

  // Date, time and notes.

  resetTime() {
    this.timeEdited = false;
    const now = toLocalInput(new Date());
    this.timeInput.value = now;
    this.timeInput.max = now;
  }

  // refreshTime keeps an untouched date and time at "now" while the page
  // stays open, so a visit saved an hour later does not get a stale time.
  refreshTime() {
    if (!this.timeEdited && !this.fixing) {
      this.resetTime();
      return;
    }
    this.timeInput.max = toLocalInput(new Date());
  }

  updateCounter(area, field) {
    const counter = $(`${field}-count`);
    counter.textContent = `${area.value.length} / ${MAX_NOTES}`;
    counter.classList.toggle('near-limit', area.value.length > MAX_NOTES - 200);
  }

  // Errors.

  setError(field, message) {
    const line = $(`${field}-error`);
    line.textContent = message;
    line.hidden = !message;
    const control = this.control(field);
    if (message) control.setAttribute('aria-invalid', 'true');
    else control.removeAttribute('aria-invalid');
  }

  control(field) {
    return {
      clientId: this.clinicInput,
      proposedDevices: $('proposed-field'),
      soldDevices: $('sold-field'),
      dateTime: this.timeInput,
      clientNotes: this.clientNotes,
      additionalNotes: this.additionalNotes,
    }[field];
  }

  clearErrors() {
    for (const field of FIELDS) this.setError(field, '');
    this.setFormError('');
  }

  setFormError(message) {
    $('form-error').textContent = message;
    $('form-error').hidden = !message;
  }

  // showErrors puts each message next to its field and moves the focus to
  // the first field at fault. errors maps API field names to messages.
  showErrors(errors, formMessage = '') {
    const other = [];
    for (const [field, message] of Object.entries(errors)) {
      if (FIELDS.includes(field)) this.setError(field, message);
      else other.push(`${field}: ${message}`);
    }
    this.setFormError([formMessage, ...other].filter(Boolean).join(' '));
    const first = FIELDS.find((f) => errors[f]);
    if (first) this.control(first).focus?.();
  }

  // showRejection shows the gateway's response to a rejected post. The API names fields
  // as in the payload, and an array entry as proposedDevices[2].
  showRejection(rejection) {
    const errors = {};
    for (const { field, message } of rejection.errors || []) {
      const key = field.replace(/\[\d+\]$/, '');
      errors[key] = errors[key] ? `${errors[key]} ${message}` : message;
    }
    this.showErrors(errors, Object.keys(errors).length ? '' : rejection.message);
  }

  status(text, kind) {
    const line = $('save-status');
    line.textContent = text;
    line.className = `save-status ${kind}`;
  }

  // Saving.

  collect() {
    const errors = {};
    if (!this.clinic) {
      errors.clientId = this.clinicInput.value.trim() ? 'Choose the clinic from the list.' : 'Choose a clinic.';
    }
    const date = fromLocalInput(this.timeInput.value);
    if (!date) errors.dateTime = 'Enter the date and time of the visit.';
    else if (date.getTime() > Date.now() + FUTURE_SLACK_MS) errors.dateTime = 'The visit cannot be in the future.';
    else if (date.getFullYear() < EARLIEST_YEAR) errors.dateTime = `Enter a date in ${EARLIEST_YEAR} or later.`;

    const sold = this.proposed.filter((id) => this.sold.includes(id));
    if (sold.length !== this.sold.length) errors.soldDevices = 'Only proposed devices can be sold.';
    for (const [area, field] of [[this.clientNotes, 'clientNotes'], [this.additionalNotes, 'additionalNotes']]) {
      if ([...area.value].length > MAX_NOTES) errors[field] = `At most ${MAX_NOTES} characters.`;
    }
    if (Object.keys(errors).length) return { errors };

    return {
      errors,
      payload: {
        visitId: this.fixing ? this.fixing.visitId : newVisitID(),
        clientId: this.clinic.id,
        userId: this.hooks.userID(),
        proposedDevices: [...this.proposed],
        soldDevices: sold,
        dateTime: toRFC3339(date),
        clientNotes: this.clientNotes.value,
        additionalNotes: this.additionalNotes.value,
      },
    };
  }

  async submit(e) {
    e.preventDefault();
    // A second tap while the first save runs must not save a second visit.
    if (this.saving) return;
    this.saving = true;
    this.saveButton.disabled = true;
    try {
      this.clearErrors();
      const { errors, payload } = this.collect();
      if (!payload) {
        this.showErrors(errors);
        this.status('', '');
        return;
      }

      this.saveButton.textContent = 'Saving…';
      this.status('', '');
      // Nothing can be typed while the save runs, because the form is reset
      // when it has finished.
      this.form.inert = true;
      const outcome = await this.hooks.save(payload, this.fixing);
      this.form.inert = false;
      switch (outcome.state) {
        case 'sent':
          this.reset();
          this.status('Visit saved and received by the cloud.', 'ok');
          break;
        case 'waiting':
          this.reset();
          this.status('Visit saved on this phone. It is sent as soon as the server can be reached.', 'queued');
          break;
        case 'rejected':
          this.fix(outcome.item);
          break;
        default:
          this.status(`The visit could not be saved on this phone: ${outcome.message}. Nothing was sent; try Save again.`, 'error');
      }
    } finally {
      this.saving = false;
      this.form.inert = false;
      this.saveButton.disabled = false;
      this.saveButton.textContent = 'Save visit';
    }
  }

  // fix loads a rejected visit from the outbox, with the gateway's errors
  // next to the fields. Saving it keeps its visitId: the gateway stored
  // nothing under that id, so the corrected visit is not a conflict.
  fix(item) {
    const visit = JSON.parse(item.body);
    this.reset();
    this.fixing = item;
    this.clinic = this.clientsByID.get(visit.clientId) || null;
    this.clinicInput.value = this.clinic ? clinicLabel(this.clinic) : visit.clientId;
    this.proposed = [...visit.proposedDevices];
    this.sold = visit.soldDevices.filter((id) => this.proposed.includes(id));
    this.renderDevices();
    this.timeInput.value = toLocalInput(new Date(visit.dateTime));
    this.timeEdited = true;
    this.clientNotes.value = visit.clientNotes;
    this.additionalNotes.value = visit.additionalNotes;
    this.updateCounter(this.clientNotes, 'clientNotes');
    this.updateCounter(this.additionalNotes, 'additionalNotes');
    this.updateSameDevices();
    $('fix-note').hidden = false;
    this.showRejection(item.rejection || {});
    this.status('', '');
  }

  reset() {
    this.fixing = null;
    this.clinic = null;
    this.clinicInput.value = '';
    this.proposed = [];
    this.sold = [];
    this.filter.value = '';
    this.renderDevices();
    this.clientNotes.value = '';
    this.additionalNotes.value = '';
    this.updateCounter(this.clientNotes, 'clientNotes');
    this.updateCounter(this.additionalNotes, 'additionalNotes');
    this.resetTime();
    this.updateSameDevices();
    $('fix-note').hidden = true;
    this.clearErrors();
  }
}
