/*
 * Clinic chat widget: one script tag plus one line of configuration on any page.
 *
 *   <script src="https://assistant.example/widget/clinic-chat.js"></script>
 *   <script>ClinicChat.init({server: "https://assistant.example", clinic: "Example Clinic", colors: {primary: "#0b5d7a"}});</script>
 *
 * It talks to the assistant over socket.io (the server issues the session and a token that
 * proves it), loads socket.io-client and its own stylesheet from where this script came from
 * (no CDN), and keeps the conversation in localStorage so it survives reloads - for at most
 * transcriptHours (24 by default, from widget-config.json); "Start over" removes it. Every text is put in the page with
 * textContent / createElement, never innerHTML: a reply or an echoed message containing HTML
 * shows as text.
 */
(function () {
  "use strict";

  var current = document.currentScript;
  var ASSET_BASE = current && current.src ? new URL(".", current.src).href : "/widget/";
  var STORAGE_PREFIX = "clinic-chat:";
  var REPLY_TIMEOUT_MS = 30000;
  // Payloads of the assistant's buttons that the widget itself knows about.
  var FORGET = "/forget_me";
  var FORGET_CONFIRM = "/forget_confirm";
  var RATING = ["/feedback_up", "/feedback_down"];

  // Interface wording (the answers themselves come from the assistant).
  var TEXT = {
    open: "Chat with {clinic}",
    title: "Questions about ketamine treatment",
    close: "Close chat",
    startOver: "Start over",
    forget: "Delete my conversation",
    forgetShort: "Delete",
    suggestions: "Suggested questions",
    rate: "Was this answer helpful?",
    inputLabel: "Your question",
    placeholder: "Type your question\u2026",
    send: "Send",
    typing: "The assistant is typing",
    you: "You",
    assistant: "Assistant",
    unread: "{count} unread",
    reconnecting: "Connection lost. Reconnecting\u2026",
    notSent: "Not sent yet: it will be sent when the connection is back.",
    noReply: "No answer arrived. Please try sending your message again.",
    tooLong: "Messages are limited to {max} characters. Please shorten yours.",
    charsLeft: "{left} characters left",
    disclaimer: "General information only, not medical advice."
  };

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key] !== undefined ? String(values[key]) : ""; });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  // A speech-bubble icon drawn as SVG (no emoji font needed).
  function chatIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "20");
    svg.setAttribute("height", "20");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
    svg.appendChild(path);
    return svg;
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // ---- safe rendering of markdown-like text ------------------------------------------------

  var SAFE_PROTOCOLS = ["http:", "https:", "mailto:", "tel:"];

  function safeUrl(raw) {
    try {
      var url = new URL(raw, window.location.href);
      return SAFE_PROTOCOLS.indexOf(url.protocol) >= 0 ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function link(text, href) {
    return el("a", { href: href, target: "_blank", rel: "noopener noreferrer", text: text });
  }

  // **bold**, *italic* or _italic_, [text](url), and bare http(s) links.
  var INLINE = /\*\*([^*\n]+)\*\*|\[([^\]\n]+)\]\(([^)\s]+)\)|(^|[\s(])_([^_\n]+)_(?=$|[\s.,;:!?)])|\*([^*\n]+)\*|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?])/g;

  function renderInline(text, parent) {
    var last = 0;
    var match;
    INLINE.lastIndex = 0;
    while ((match = INLINE.exec(text)) !== null) {
      var start = match.index + (match[4] ? match[4].length : 0);
      parent.appendChild(document.createTextNode(text.slice(last, start)));
      if (match[1] !== undefined) {
        parent.appendChild(el("strong", { text: match[1] }));
      } else if (match[2] !== undefined) {
        var href = safeUrl(match[3]);
        parent.appendChild(href ? link(match[2], href) : document.createTextNode(match[0]));
      } else if (match[5] !== undefined) {
        parent.appendChild(el("em", { text: match[5] }));
      } else if (match[6] !== undefined) {
        parent.appendChild(el("em", { text: match[6] }));
      } else if (match[7] !== undefined) {
        var bare = safeUrl(match[7]);
        parent.appendChild(bare ? link(match[7], bare) : document.createTextNode(match[7]));
      }
      last = INLINE.lastIndex;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
    return parent;
  }

  function tableCells(line) {
    return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map(function (c) { return c.trim(); });
  }

  function renderTable(lines) {
    var rows = lines.filter(function (l) { return !/^\|?[\s:|-]+\|?$/.test(l.trim()); });
    var hasHeader = lines.length > 1 && /^\|?[\s:|-]+\|?$/.test(lines[1].trim());
    var table = el("table", { className: "cc-table" });
    rows.forEach(function (line, index) {
      var row = el("tr");
      tableCells(line).forEach(function (cell) {
        var header = hasHeader && index === 0;
        row.appendChild(renderInline(cell, el(header ? "th" : "td", header ? { scope: "col" } : {})));
      });
      table.appendChild(row);
    });
    return table;
  }

  // Paragraphs, "- " / "* " / "\u2022 " lists, "1. " lists, and "| a | b |" tables.
  function renderText(text) {
    var fragment = document.createDocumentFragment();
    var lines = String(text).split("\n");
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      var group;
      if (/^\s*([-*\u2022])\s+/.test(line) || /^\s*\d+[.)]\s+/.test(line)) {
        var ordered = /^\s*\d+[.)]\s+/.test(line);
        var pattern = ordered ? /^\s*\d+[.)]\s+/ : /^\s*([-*\u2022])\s+/;
        var list = el(ordered ? "ol" : "ul");
        while (i < lines.length && pattern.test(lines[i])) {
          list.appendChild(renderInline(lines[i].replace(pattern, ""), el("li")));
          i += 1;
        }
        fragment.appendChild(list);
      } else if (/^\s*\|.*\|\s*$/.test(line)) {
        group = [];
        while (i < lines.length && /^\s*\|.*\|\s*$/.test(lines[i])) { group.push(lines[i]); i += 1; }
        fragment.appendChild(renderTable(group));
      } else {
        if (line.trim()) fragment.appendChild(renderInline(line, el("p")));
        i += 1;
      }
    }
    return fragment;
  }

  // ---- storage -------------------------------------------------------------------------------

  function makeStore(key) {
    var memory = null;
    return {
      load: function () {
        try {
          var raw = window.localStorage.getItem(key);
          return raw ? JSON.parse(raw) : null;
        } catch (e) {
          return memory;
        }
      },
      save: function (state) {
        memory = state;
        try { window.localStorage.setItem(key, JSON.stringify(state)); } catch (e) { /* private mode: memory only */ }
      },
      clear: function () {
        memory = null;
        try { window.localStorage.removeItem(key); } catch (e) { /* nothing stored */ }
      }
    };
  }

  // The server issues the session (an id and a token that proves it is ours); until then: none.
  function freshState() {
    return { sessionId: null, token: null, messages: [], open: false, unread: 0, greeted: false, savedAt: Date.now() };
  }

  // A transcript older than the clinic's limit (widget-config.json, 24 h by default) is dropped.
  function expired(state, hours) {
    return !state || typeof state.savedAt !== "number" || Date.now() - state.savedAt > hours * 3600 * 1000;
  }

  // ---- the widget ------------------------------------------------------------------------------

  function Widget(options) {
    this.options = options;
    this.server = String(options.server || window.location.origin).replace(/\/+$/, "");
    this.clinic = options.clinic || "the clinic";
    this.text = Object.assign({}, TEXT, options.text || {});
    this.maxLength = options.maxLength || 500;
    this.transcriptHours = typeof options.transcriptHours === "number" ? options.transcriptHours : 24;
    this.store = makeStore(STORAGE_PREFIX + this.server);
    this.state = this.store.load();
    if (expired(this.state, this.transcriptHours)) {
      this.store.clear();
      this.state = freshState();
    }
    this.state.messages = (this.state.messages || []).filter(function (m) { return m && typeof m.text === "string"; });
    this.socket = null;
    this.ready = false;
    this.replyTimer = null;
  }

  Widget.prototype.t = function (key, values) {
    return fill(this.text[key], Object.assign({ clinic: this.clinic, max: this.maxLength }, values || {}));
  };

  Widget.prototype.mount = function () {
    var self = this;
    var root = el("div", { className: "cc-root", "data-clinic-chat": "" });
    var colors = this.options.colors || {};
    if (colors.primary) root.style.setProperty("--cc-primary", colors.primary);
    if (colors.primaryText) root.style.setProperty("--cc-primary-text", colors.primaryText);
    if (colors.background) root.style.setProperty("--cc-background", colors.background);
    if (colors.text) root.style.setProperty("--cc-text", colors.text);

    this.badge = el("span", { className: "cc-badge", "aria-hidden": "true", hidden: "" });
    this.launcher = el("button", { type: "button", className: "cc-launcher", "aria-expanded": "false", "aria-controls": "cc-panel" }, [
      chatIcon(),
      el("span", { className: "cc-launcher-text", text: this.t("open") }),
      this.badge
    ]);

    this.log = el("div", { className: "cc-log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": this.t("title"), tabindex: "0" });
    this.typing = el("div", { className: "cc-typing", role: "status", hidden: "" }, [
      el("span", { className: "cc-visually-hidden", text: this.t("typing") }),
      el("span", { className: "cc-dot", "aria-hidden": "true" }),
      el("span", { className: "cc-dot", "aria-hidden": "true" }),
      el("span", { className: "cc-dot", "aria-hidden": "true" })
    ]);
    this.status = el("div", { className: "cc-status", role: "status", "aria-live": "polite" });
    this.input = el("input", {
      id: "cc-input", className: "cc-input", type: "text", maxlength: String(this.maxLength),
      autocomplete: "off", placeholder: this.t("placeholder"), "aria-describedby": "cc-limit cc-disclaimer"
    });
    this.limit = el("div", { id: "cc-limit", className: "cc-limit", "aria-live": "polite" });
    this.form = el("form", { className: "cc-form" }, [
      el("label", { "for": "cc-input", className: "cc-visually-hidden", text: this.t("inputLabel") }),
      this.input,
      el("button", { type: "submit", className: "cc-send", text: this.t("send") })
    ]);
    this.closeButton = el("button", { type: "button", className: "cc-close", "aria-label": this.t("close") }, [
      el("span", { "aria-hidden": "true", text: "\u00D7" })
    ]);
    this.restartButton = el("button", { type: "button", className: "cc-restart", text: this.t("startOver") });
    // "Forget me": asks the assistant, which asks the patient to confirm before deleting.
    this.forgetButton = el("button", { type: "button", className: "cc-restart cc-forget", "aria-label": this.t("forget"),
                                       title: this.t("forget"), text: this.t("forgetShort") });
    this.disclaimer = el("p", { id: "cc-disclaimer", className: "cc-disclaimer", text: this.t("disclaimer") });
    this.panel = el("div", { id: "cc-panel", className: "cc-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "cc-title", hidden: "" }, [
      el("div", { className: "cc-header" }, [
        el("h2", { id: "cc-title", className: "cc-title", text: this.t("title") }),
        this.restartButton,
        this.forgetButton,
        this.closeButton
      ]),
      this.disclaimer,
      this.log,
      this.typing,
      this.status,
      this.form,
      this.limit
    ]);
    root.appendChild(this.panel);
    root.appendChild(this.launcher);
    document.body.appendChild(root);
    this.root = root;

    this.launcher.addEventListener("click", function () { self.state.open ? self.close() : self.open(); });
    this.closeButton.addEventListener("click", function () { self.close(); });
    this.restartButton.addEventListener("click", function () { self.startOver(); });
    this.forgetButton.addEventListener("click", function () {
      self.send(FORGET, self.t("forget"), true);
      self.input.focus();
    });
    this.panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); self.close(); }
    });
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submit();
    });
    this.input.addEventListener("input", function () { self.updateLimit(); });
    if (window.visualViewport) {
      window.visualViewport.addEventListener("resize", function () { self.fitViewport(); });
    }

    this.renderHistory();
    this.updateBadge();
    if (this.state.open) this.open({ focus: false });
  };

  // ---- connection ---------------------------------------------------------------------------------

  Widget.prototype.connect = function () {
    var self = this;
    if (this.socket) return;
    loadScript(ASSET_BASE + "vendor/socket.io.min.js", function () {
      self.socket = window.io(self.server, {
        path: self.options.path || "/socket.io",
        transports: self.options.transports || ["websocket"],
        // Behind a balancer, long-polling stays on one instance through its cookie.
        withCredentials: true,
        reconnection: true,
        reconnectionDelay: 500,
        reconnectionDelayMax: 4000
      });
      var requestSession = function () {
        self.socket.emit("session_request", { session_id: self.state.sessionId, token: self.state.token });
      };
      self.socket.on("connect", requestSession);
      self.socket.on("session_required", requestSession);
      self.socket.on("session_confirm", function (data) {
        if (!data || typeof data.session_id !== "string") return;
        if (self.state.sessionId && data.session_id !== self.state.sessionId) {
          // The server did not resume our conversation (e.g. its key changed): start afresh,
          // so the transcript shown matches what the assistant knows.
          self.resetTranscript(true);
        }
        self.state.sessionId = data.session_id;
        self.state.token = data.token;
        // Messages sent on a connection that was lost before their reply came are sent again,
        // marked as such: the server answers each message once (with the reply it already had).
        // Only recent ones (within the reply timeout): an old unanswered message (from an older
        // widget, or one the server chose not to answer) is never sent again hours later.
        var now = Date.now();
        self.state.messages.forEach(function (m) {
          if (m.from !== "user" || m.status !== "sent") return;
          if (m.sentAt && now - m.sentAt < REPLY_TIMEOUT_MS) { m.status = "pending"; m.resend = true; }
          else m.status = "answered";
        });
        self.save();
        self.ready = true;
        self.root.setAttribute("data-connected", "true");
        self.setStatus("");
        self.flush();
      });
      self.socket.on("disconnect", function () { self.offline(); });
      self.socket.on("connect_error", function () { self.offline(); });
      self.socket.on("bot_uttered", function (message) { self.receive(message); });
    });
  };

  Widget.prototype.offline = function () {
    this.ready = false;
    this.root.setAttribute("data-connected", "false");
    this.setStatus(this.t("reconnecting"));
  };

  Widget.prototype.setStatus = function (text) {
    this.status.textContent = text;
    this.status.hidden = !text;
  };

  // ---- sending ---------------------------------------------------------------------------------------

  Widget.prototype.submit = function () {
    var text = this.input.value.trim();
    if (!text) return;
    if (text.length > this.maxLength) {
      this.limit.textContent = this.t("tooLong");
      return;
    }
    this.input.value = "";
    this.updateLimit();
    this.send(text, text);
  };

  // payload goes to the assistant; display (if any) is what the patient sees as their message;
  // button: a suggested question was pressed (its payload is a shortcut the server accepts).
  Widget.prototype.send = function (payload, display, button) {
    var message = { id: randomId(), from: "user", text: display || "", payload: payload, hidden: !display,
                    button: !!button, status: "pending" };
    this.clearQuickReplies();
    if (payload === FORGET_CONFIRM) this.state.forgetting = true;
    this.state.messages.push(message);
    if (!message.hidden) this.renderMessage(message);
    this.save();
    this.flush();
  };

  Widget.prototype.flush = function () {
    var self = this;
    if (!this.ready) {
      this.state.messages.forEach(function (m) { if (m.status === "pending") self.markStatus(m); });
      return;
    }
    this.state.messages.forEach(function (m) {
      if (m.status !== "pending") return;
      var metadata = {};
      if (m.button) metadata.button = true;
      if (m.resend) metadata.resend = true;
      self.socket.emit("user_uttered", { message: m.payload, message_id: m.id, metadata: metadata });
      m.status = "sent";
      m.sentAt = Date.now();
      self.markStatus(m);
      self.waitForReply();
    });
    this.save();
  };

  Widget.prototype.markStatus = function (message) {
    var node = this.log.querySelector('[data-id="' + message.id + '"]');
    if (!node) return;
    var note = node.querySelector(".cc-note");
    if (message.status === "pending") {
      node.classList.add("cc-pending");
      if (!note) node.appendChild(el("span", { className: "cc-note", text: this.t("notSent") }));
    } else {
      node.classList.remove("cc-pending");
      if (note) note.remove();
    }
  };

  Widget.prototype.waitForReply = function () {
    var self = this;
    this.typing.hidden = false;
    this.scrollToEnd();
    clearTimeout(this.replyTimer);
    this.replyTimer = setTimeout(function () {
      self.typing.hidden = true;
      self.setStatus(self.t("noReply"));
    }, REPLY_TIMEOUT_MS);
  };

  // ---- receiving ---------------------------------------------------------------------------------------

  Widget.prototype.receive = function (data) {
    if (!data || (typeof data.text !== "string" && !data.quick_replies && !data.buttons)) return;
    var question = typeof data.reply_to === "string" ? this.state.messages.filter(function (m) {
      return m.from === "user" && m.id === data.reply_to;
    })[0] : null;
    if (question) {
      // A reply delivered twice (the original and the answer to a resend) is shown once.
      var seen = question.replies || [];
      var key = typeof data.text === "string" ? data.text : JSON.stringify(data);
      if (question.status === "answered" && seen.indexOf(key) >= 0) return;
      question.status = "answered";
      question.replies = seen.concat([key]).slice(-20);
    }
    clearTimeout(this.replyTimer);
    this.typing.hidden = true;
    if (this.status.textContent === this.t("noReply")) this.setStatus("");
    var buttons = (data.quick_replies || data.buttons || []).filter(function (b) {
      return b && typeof b.title === "string" && typeof b.payload === "string";
    }).map(function (b) { return { title: b.title, payload: b.payload }; });
    var message = { id: randomId(), from: "bot", text: typeof data.text === "string" ? data.text : "", buttons: buttons };
    if (this.state.forgetting) { this.forgotten(message); return; }
    this.state.messages.push(message);
    if (!this.state.open) this.state.unread += 1;
    this.save();
    this.renderMessage(message);
    this.updateBadge();
  };

  // ---- rendering -----------------------------------------------------------------------------------------

  Widget.prototype.renderHistory = function () {
    var self = this;
    this.log.textContent = "";
    var visible = this.state.messages.filter(function (m) { return !m.hidden; });
    visible.forEach(function (m, index) {
      var later = visible.slice(index + 1).some(function (n) { return n.from === "user"; });
      self.renderMessage(m, { quickReplies: !later });
      if (m.status === "pending") self.markStatus(m);
    });
  };

  Widget.prototype.renderMessage = function (message, options) {
    var self = this;
    var bot = message.from === "bot";
    var bubble = el("div", { className: "cc-message " + (bot ? "cc-bot" : "cc-user"), "data-id": message.id }, [
      el("span", { className: "cc-visually-hidden", text: (bot ? this.t("assistant") : this.t("you")) + ": " })
    ]);
    if (bot) {
      bubble.appendChild(renderText(message.text));
    } else {
      bubble.appendChild(el("p", { text: message.text }));
    }
    // Suggested questions stay below the newest bot message (e.g. after the disclaimer): the new
    // message goes above them, so they are never moved (moving them would drop the keyboard focus
    // of a patient who has tabbed to one).
    var offered = this.log.querySelector(".cc-quick-replies");
    if (offered) this.log.insertBefore(bubble, offered);
    else this.log.appendChild(bubble);
    if (bot && message.buttons && message.buttons.length && !(options && options.quickReplies === false)) {
      var rating = message.buttons.every(function (b) { return RATING.indexOf(b.payload) >= 0; });
      var group = el("div", { className: "cc-quick-replies" + (rating ? " cc-rating" : ""), role: "group",
                              "aria-label": this.t(rating ? "rate" : "suggestions") });
      message.buttons.forEach(function (button) {
        var node = el("button", { type: "button", className: "cc-quick-reply", text: button.title });
        node.addEventListener("click", function () {
          self.send(button.payload, button.title, true);
          self.input.focus();
        });
        group.appendChild(node);
      });
      this.log.appendChild(group);
    }
    this.scrollToEnd();
  };

  Widget.prototype.clearQuickReplies = function () {
    Array.prototype.forEach.call(this.log.querySelectorAll(".cc-quick-replies"), function (node) { node.remove(); });
  };

  Widget.prototype.scrollToEnd = function () {
    this.log.scrollTop = this.log.scrollHeight;
  };

  Widget.prototype.updateLimit = function () {
    var left = this.maxLength - this.input.value.length;
    if (left <= 0) this.limit.textContent = this.t("tooLong");
    else if (left <= 50) this.limit.textContent = this.t("charsLeft", { left: left });
    else this.limit.textContent = "";
  };

  Widget.prototype.updateBadge = function () {
    var count = this.state.unread;
    this.badge.hidden = !count;
    this.badge.textContent = count ? String(count) : "";
    var label = this.t("open") + (count ? " (" + this.t("unread", { count: count }) + ")" : "");
    this.launcher.setAttribute("aria-label", label);
  };

  Widget.prototype.fitViewport = function () {
    if (!window.visualViewport || !window.matchMedia("(max-width: 480px)").matches) {
      this.panel.style.removeProperty("height");
      return;
    }
    this.panel.style.setProperty("height", window.visualViewport.height + "px");
    this.scrollToEnd();
  };

  // ---- open / close / start over -----------------------------------------------------------------------

  Widget.prototype.open = function (options) {
    this.state.open = true;
    this.state.unread = 0;
    this.panel.hidden = false;
    this.root.classList.add("cc-is-open");
    this.launcher.setAttribute("aria-expanded", "true");
    this.updateBadge();
    this.save();
    this.connect();
    if (!this.state.greeted) {
      this.state.greeted = true;
      this.send("/greet", null, true);
    }
    this.fitViewport();
    this.scrollToEnd();
    if (!options || options.focus !== false) this.input.focus();
  };

  Widget.prototype.close = function () {
    this.state.open = false;
    this.panel.hidden = true;
    this.root.classList.remove("cc-is-open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.save();
    this.launcher.focus();
  };

  // A new, empty conversation (the old transcript is removed from this browser); carry: messages
  // typed while offline are sent in the new conversation.
  Widget.prototype.resetTranscript = function (carry) {
    clearTimeout(this.replyTimer);
    this.typing.hidden = true;
    this.setStatus("");
    var pending = carry ? this.state.messages.filter(function (m) { return m.status === "pending" && !m.hidden; }) : [];
    this.store.clear();
    this.state = Object.assign(freshState(), { open: this.state.open, greeted: true });
    this.log.textContent = "";
    this.send("/greet", null, true);
    var self = this;
    pending.forEach(function (m) { self.send(m.payload, m.text, m.button); });
  };

  // The assistant deleted the conversation ("forget me" confirmed): this browser forgets it too
  // and the next message starts a new session; only the confirmation stays on screen.
  Widget.prototype.forgotten = function (message) {
    if (this.socket && this.ready) {
      this.ready = false;
      this.socket.emit("session_request", {});
    }
    clearTimeout(this.replyTimer);
    this.typing.hidden = true;
    this.store.clear();
    this.state = Object.assign(freshState(), { open: this.state.open, greeted: true });
    this.state.messages.push(message);
    this.log.textContent = "";
    this.renderMessage(message);
    this.save();
  };

  Widget.prototype.startOver = function () {
    if (this.socket && this.ready) {
      this.ready = false;  // nothing is sent until the new session is confirmed
      this.socket.emit("session_request", {});  // the server issues a new session
    }
    this.resetTranscript(false);
    this.input.focus();
  };

  Widget.prototype.save = function () {
    this.state.savedAt = Date.now();
    this.store.save(this.state);
  };

  function loadScript(src, done) {
    if (window.io) { done(); return; }
    var existing = document.querySelector('script[data-clinic-chat-vendor]');
    if (existing) { existing.addEventListener("load", done); return; }
    var script = el("script", { src: src, "data-clinic-chat-vendor": "" });
    script.addEventListener("load", done);
    document.head.appendChild(script);
  }

  function loadStyles() {
    if (document.querySelector('link[data-clinic-chat-style]')) return;
    document.head.appendChild(el("link", { rel: "stylesheet", href: ASSET_BASE + "clinic-chat.css", "data-clinic-chat-style": "" }));
  }

  function start(options, settings) {
    var merged = Object.assign({}, settings || {}, options || {});
    merged.text = Object.assign({}, (settings && settings.text) || {}, (options && options.text) || {});
    var widget = new Widget(merged);
    var mount = function () { widget.mount(); };
    if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
    window.ClinicChat.widget = widget;
    return widget;
  }

  window.ClinicChat = {
    // Server-side settings (message limit, the short disclaimer from the assistant's domain) come
    // from widget-config.json next to this script; options given here win.
    init: function (options) {
      loadStyles();
      var done = false;
      var go = function (settings) { if (!done) { done = true; start(options, settings); } };
      if (!window.fetch) { go(null); return; }
      window.fetch(ASSET_BASE + "widget-config.json", { credentials: "omit" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(go, function () { go(null); });
    },
    renderText: renderText
  };
})();
