/*
 * The coaching page (/coach/), docs/coach.md "The coaching page".
 *
 * The app opens /coach/#token=<jwt>. The token is read from the fragment once (browsers never send
 * the fragment to the server), kept in sessionStorage and removed from the address bar; every call
 * goes to the REST API with `Authorization: Bearer` and no cookies. Text from the data is only ever
 * put into the page with textContent / text nodes, never parsed as HTML.
 */
(function () {
  "use strict";

  var TOKEN_KEY = "yahealthy.coach.token";
  var HISTORY_PAGE = 5;
  var MESSAGE_MAX = 2000;

  // What each goal metric is called, and whether its target is per day.
  var METRICS = {
    protein_g: ["Protein", true],
    calories_kcal: ["Calories", true],
    carbs_g: ["Carbs", true],
    fat_g: ["Fat", true],
    water_ml: ["Water", true],
    sleep_hours: ["Sleep", true],
    exercise_minutes: ["Exercise", true],
    steps: ["Steps", true],
    weight_kg: ["Weight", false],
  };
  var NUTRIENT_UNITS = { calories_kcal: "kcal", protein_g: "g", carbs_g: "g", fat_g: "g" };
  var TOOLS = {
    get_user_nutrition_summary: "Read your nutrition summary",
    get_user_goals: "Checked your goals",
    suggest_goal: "Suggested a goal",
    create_ai_insight: "Saved an insight for you",
    log_coaching_session: "Noted this conversation",
    update_engagement_tier: "Updated your engagement tier",
    estimate_churn_risk: "Looked at how regularly you log",
  };
  var FALLBACK_NOTE = "(The AI model is unavailable right now";

  var apiRoot = "/api/crm/";
  var memoryToken = null; // when sessionStorage is unavailable (some private modes)
  var token = null;
  var userId = null;
  var linkDead = false;
  var conversationId = null;
  var historyOffset = 0;
  var retryTimer = null;
  var nutrition = null;
  var nutrientChosen = false; // until she picks one, the chart shows a nutrient she has a goal for

  function $(id) {
    return document.getElementById(id);
  }

  // A DOM element; children may be strings (added as text, never as HTML) or nodes.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        if (name === "text") node.textContent = attrs[name];
        else if (name === "className") node.className = attrs[name];
        else node.setAttribute(name, attrs[name]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function number(value, unit) {
    if (value === null || value === undefined || isNaN(value)) return "–";
    var digits = unit === "h" || Math.abs(value) < 10 ? 1 : 0;
    return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  function when(iso) {
    if (!iso) return "never";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return iso;
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  // --- The token: from the fragment once, then session storage --------------------------------

  function storageGet() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY);
    } catch (e) {
      return memoryToken;
    }
  }

  function storageSet(value) {
    memoryToken = value;
    try {
      if (value === null) window.sessionStorage.removeItem(TOKEN_KEY);
      else window.sessionStorage.setItem(TOKEN_KEY, value);
    } catch (e) {
      /* kept in memory only */
    }
  }

  function tokenTake() {
    var hash = window.location.hash;
    if (hash.length > 1) {
      var params = new URLSearchParams(hash.slice(1));
      var fresh = params.get("token");
      if (fresh !== null) {
        storageSet(fresh);
        params.delete("token");
        var rest = params.toString();
        // Out of the address bar and this history entry: nothing to copy, bookmark or share.
        window.history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? "#" + rest : ""));
      }
    }
    return storageGet();
  }

  // The user id is the token's `sub`; the server verifies the signature on every call.
  function tokenSubject(value) {
    try {
      var part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      while (part.length % 4) part += "=";
      var claims = JSON.parse(window.atob(part));
      return typeof claims.sub === "string" && claims.sub ? claims.sub : null;
    } catch (e) {
      return null;
    }
  }

  // --- The REST API --------------------------------------------------------------------------

  function ApiError(status, code, message, details) {
    this.status = status;
    this.code = code || "";
    this.message = message || "";
    this.details = details || {};
    this.retryAfter = 0;
  }

  function userPath(rest) {
    return "users/" + encodeURIComponent(userId) + (rest ? "/" + rest : "");
  }

  function api(method, path, body) {
    var headers = { Accept: "application/json", Authorization: "Bearer " + token };
    var init = { method: method, headers: headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(apiRoot + path, init).then(
      function (response) {
        return response
          .json()
          .catch(function () {
            return null;
          })
          .then(function (payload) {
            if (response.ok) return payload;
            var error = (payload && payload.error) || {};
            var failure = new ApiError(response.status, error.code, error.message, error.details);
            if (response.status === 429) {
              failure.retryAfter = parseInt(response.headers.get("Retry-After"), 10) || 60;
            }
            if (response.status === 401) linkExpired();
            throw failure;
          });
      },
      function () {
        throw new ApiError(0, "network", "");
      }
    );
  }

  // What to tell the user about a failed call (401 has its own screen, 403 consent its own box).
  function friendly(error) {
    if (error.status === 0) {
      return navigator.onLine === false
        ? "You're offline. Connect to the internet and try again."
        : "The coach can't be reached right now. Check your connection and try again.";
    }
    if (error.status === 429) return "You've asked a lot in a short time. Try again in " + error.retryAfter + " s.";
    if (error.status === 403) return "You don't have access to this. " + error.message;
    if (error.status === 404) {
      return (error.message || "Not found.") + " It may have been removed; open the coach again from the app if this keeps happening.";
    }
    if (error.status >= 500) return "Something went wrong on our side. Please try again in a moment.";
    // 400: the first field message says what to change ("Ensure this field has no more than ...").
    var fields = Object.keys(error.details || {});
    for (var i = 0; i < fields.length; i++) {
      var messages = error.details[fields[i]];
      if (Array.isArray(messages) && typeof messages[0] === "string") return messages[0];
    }
    return error.message || "That didn't work. Please try again.";
  }

  // --- Screens -------------------------------------------------------------------------------

  function gateShow(title, text) {
    $("app").hidden = true;
    $("gate").hidden = false;
    $("gate-title").textContent = title;
    $("gate-text").textContent = text;
    $("gate-title").focus();
  }

  function linkExpired() {
    if (linkDead) return;
    linkDead = true;
    storageSet(null);
    gateShow(
      "Your coaching link has expired",
      "For your security, a link to the coach only works for a short time. Go back to the YAHealthy " +
        "app and open the coach again to get a fresh one."
    );
  }

  function sectionFailed(list, error, retry) {
    if (linkDead) return;
    var again = el("button", { type: "button", className: "secondary", text: "Try again" });
    again.addEventListener("click", retry);
    list.replaceChildren(el("li", { className: "empty" }, el("p", { text: friendly(error) }), again));
  }

  function emptyItem(text) {
    return el("li", { className: "empty", text: text });
  }

  // --- Ask the coach -------------------------------------------------------------------------

  function askThinking(on) {
    $("ask-button").disabled = on || retryTimer !== null;
    $("ask-form").setAttribute("aria-busy", on ? "true" : "false");
    var status = $("ask-status");
    if (on) {
      status.replaceChildren(el("span", { className: "spinner", "aria-hidden": "true" }), "Your coach is thinking…");
    } else {
      status.replaceChildren();
    }
  }

  function askError(text) {
    $("ask-error").textContent = text;
    $("ask-error").hidden = !text;
  }

  function askWaitForRetry(seconds) {
    var left = seconds;
    function tick() {
      if (left <= 0) {
        window.clearInterval(retryTimer);
        retryTimer = null;
        $("ask-button").disabled = false;
        askError("");
        $("ask-status").textContent = "You can ask again now.";
        return;
      }
      askError("You've asked a lot in a short time. Try again in " + left + " s.");
      left -= 1;
    }
    if (retryTimer !== null) window.clearInterval(retryTimer);
    retryTimer = window.setInterval(tick, 1000);
    $("ask-button").disabled = true;
    tick();
  }

  function answerShow(answer) {
    var text = answer.response || "";
    var fallback = Boolean(answer.fallbackReason);
    if (fallback && text.indexOf(FALLBACK_NOTE) === 0) {
      // The badge says it; the answer keeps only the advice.
      text = text.slice(text.indexOf(")") + 1).replace(/^\s+/, "");
    }
    $("answer-fallback").hidden = !fallback;
    $("answer-text").textContent = text;
    var tools = (answer.toolsUsed || []).map(function (name) {
      return el("li", null, (TOOLS[name] || name) + " ", el("code", { text: name }));
    });
    if (!tools.length) tools = [el("li", { text: "No tools were needed for this answer." })];
    var suggested = answer.suggestedGoals || [];
    if (suggested.length) {
      tools.push(
        el(
          "li",
          { className: "small" },
          el("a", {
            href: "#suggested-title",
            text:
              suggested.length === 1
                ? "The coach suggested a goal: see “Suggested goals” below."
                : "The coach suggested " + suggested.length + " goals: see “Suggested goals” below.",
          })
        )
      );
    }
    $("answer-tools").replaceChildren.apply($("answer-tools"), tools);
    $("answer").hidden = false;
  }

  function ask(event) {
    event.preventDefault();
    var message = $("ask-message").value.trim();
    askError("");
    if (!message) {
      askError("Type a question for your coach first.");
      $("ask-message").focus();
      return;
    }
    if (message.length > MESSAGE_MAX) {
      askError("Your question is too long: at most " + MESSAGE_MAX + " characters, please.");
      return;
    }
    var body = { message: message };
    if (conversationId) body.conversationId = conversationId;
    askThinking(true);
    api("POST", userPath("ask"), body)
      .then(function (answer) {
        askThinking(false);
        $("consent").hidden = true;
        answerShow(answer);
        $("ask-status").textContent = "Your coach answered.";
        if (answer.conversationId) {
          conversationId = answer.conversationId;
          $("new-conversation").hidden = false;
        }
        loadSuggested((answer.suggestedGoals || []).map(function (goal) {
          return goal.id;
        }));
        loadInsights();
        loadHistory(true);
        loadMetrics();
      })
      .catch(function (error) {
        askThinking(false);
        if (error.status === 401) return;
        if (error.status === 403 && error.code === "ai_consent_required") {
          $("consent").hidden = false;
          $("consent-grant").focus();
          return;
        }
        if (error.status === 429) {
          askWaitForRetry(error.retryAfter);
          return;
        }
        if (error.code === "conversation_not_found") {
          // The conversation is gone (e.g. erased): the next question starts a new one.
          conversationId = null;
          $("new-conversation").hidden = true;
          askError("That conversation is no longer available. Ask again to start a new one.");
          return;
        }
        askError(friendly(error));
      });
  }

  function consentGrant() {
    var button = $("consent-grant");
    button.disabled = true;
    api("PUT", userPath(""), { consent_ai_processing: true })
      .then(function () {
        $("consent").hidden = true;
        $("ask-status").textContent = "Thank you. Your coach can answer now: ask your question again.";
        $("ask-message").focus();
      })
      .catch(function (error) {
        if (error.status !== 401) askError(friendly(error));
      })
      .then(function () {
        button.disabled = false;
      });
  }

  // --- Goals ---------------------------------------------------------------------------------

  function goalName(goal) {
    var metric = METRICS[goal.metric] || [goal.metric, false];
    return metric[0] + ": " + number(goal.goal_value, goal.goal_unit) + " " + goal.goal_unit + (metric[1] ? " a day" : "");
  }

  function goalDecide(goal, status, button) {
    var item = button.closest("li");
    item.querySelectorAll("button").forEach(function (b) {
      b.disabled = true;
    });
    api("PUT", "goals/" + goal.id, { status: status })
      .then(function () {
        $("goal-status").textContent =
          status === "active"
            ? "Goal accepted: " + goalName(goal) + ". It's now among your active goals."
            : "Goal declined: " + goalName(goal) + ".";
        loadSuggested([]);
        loadActive();
        loadNutrition();
        $("suggested-title").focus();
      })
      .catch(function (error) {
        if (error.status === 401) return;
        $("goal-status").textContent = friendly(error);
        loadSuggested([]);
      });
  }

  function loadSuggested(newIds) {
    var list = $("suggested-goals");
    return api("GET", userPath("goals?status=suggested&limit=20"))
      .then(function (page) {
        var items = page.data.map(function (goal) {
          var accept = el("button", { type: "button", className: "primary", text: "Accept" });
          accept.setAttribute("aria-label", "Accept goal: " + goalName(goal));
          accept.addEventListener("click", function () {
            goalDecide(goal, "active", accept);
          });
          var decline = el("button", { type: "button", className: "danger", text: "Decline" });
          decline.setAttribute("aria-label", "Decline goal: " + goalName(goal));
          decline.addEventListener("click", function () {
            goalDecide(goal, "abandoned", decline);
          });
          var fresh = newIds && newIds.indexOf(goal.id) >= 0;
          return el(
            "li",
            { className: "goal" + (fresh ? " fresh" : "") },
            el("h3", { text: goalName(goal) + (fresh ? " (new)" : "") }),
            goal.rationale ? el("p", { className: "muted small", text: goal.rationale }) : null,
            goal.target_date ? el("p", { className: "small", text: "Target date: " + goal.target_date }) : null,
            el("div", { className: "row" }, accept, decline)
          );
        });
        if (!items.length) items = [emptyItem("No suggestions right now. Ask your coach to help you set a goal.")];
        list.replaceChildren.apply(list, items);
      })
      .catch(function (error) {
        sectionFailed(list, error, function () {
          loadSuggested([]);
        });
      });
  }

  function loadActive() {
    var list = $("active-goals");
    return api("GET", userPath("goals?status=active&limit=50"))
      .then(function (page) {
        var items = page.data.map(function (goal) {
          var pct = Math.max(0, Math.min(100, Number(goal.progress_pct) || 0));
          var barId = "goal-progress-" + goal.id;
          var streak =
            goal.streak_days > 0
              ? el("span", { className: "streak", text: goal.streak_days + "-day streak" })
              : el("span", { className: "muted", text: "No streak yet: it grows each day you reach this goal" });
          return el(
            "li",
            { className: "goal" },
            el(
              "div",
              { className: "goal-head" },
              el("h3", { text: goalName(goal) }),
              el("span", { text: number(pct) + "% done" })
            ),
            el("label", { for: barId, className: "sr-only", text: "Progress toward " + goalName(goal) }),
            el("progress", { id: barId, max: "100", value: String(pct) }, number(pct) + "%"),
            el("p", { className: "small" }, streak, goal.target_date ? " · by " + goal.target_date : "")
          );
        });
        if (!items.length) items = [emptyItem("No active goals yet. Accept a suggestion or ask your coach for one.")];
        list.replaceChildren.apply(list, items);
      })
      .catch(function (error) {
        sectionFailed(list, error, loadActive);
      });
  }

  // --- Insights ------------------------------------------------------------------------------

  function loadInsights() {
    var list = $("insights");
    return api("GET", userPath("insights?limit=20"))
      .then(function (page) {
        var items = page.data.map(function (insight) {
          var dismiss = el("button", { type: "button", className: "secondary", text: "Dismiss" });
          dismiss.setAttribute("aria-label", "Dismiss insight: " + insight.title);
          dismiss.addEventListener("click", function () {
            dismiss.disabled = true;
            api("POST", userPath("insights/" + insight.id + "/dismiss"))
              .then(function () {
                $("insight-status").textContent = "Insight dismissed: " + insight.title + ".";
                $("insights-title").focus();
                loadInsights();
              })
              .catch(function (error) {
                dismiss.disabled = false;
                if (error.status !== 401) $("insight-status").textContent = friendly(error);
              });
          });
          return el(
            "li",
            null,
            el("h3", { text: insight.title }),
            el("p", { text: insight.body }),
            insight.recommendation ? el("p", null, el("strong", { text: "Try this: " }), insight.recommendation) : null,
            el("p", { className: "muted small", text: when(insight.created_at) }),
            dismiss
          );
        });
        if (!items.length) items = [emptyItem("No open insights. Your coach adds new ones as you log.")];
        list.replaceChildren.apply(list, items);
      })
      .catch(function (error) {
        sectionFailed(list, error, loadInsights);
      });
  }

  // --- Nutrition: 7 days against the active goal's target, as an inline SVG ------------------

  function lastSevenDays(today) {
    var end = new Date(today + "T00:00:00Z");
    var days = [];
    for (var i = 6; i >= 0; i--) {
      var day = new Date(end.getTime() - i * 86400000);
      days.push({
        iso: day.toISOString().slice(0, 10),
        label: day.toLocaleDateString(undefined, { weekday: "short", timeZone: "UTC" }),
      });
    }
    return days;
  }

  function chartDraw() {
    var box = $("nutrition-chart");
    if (!nutrition) return;
    var nutrient = $("nutrient").value;
    var unit = NUTRIENT_UNITS[nutrient];
    var name = $("nutrient").selectedOptions[0].textContent.replace(/ \(.*\)$/, "");
    var byDate = {};
    (nutrition.daily || []).forEach(function (row) {
      byDate[row.date] = row[nutrient];
    });
    var days = lastSevenDays(nutrition.date).map(function (day) {
      day.value = byDate[day.iso] === undefined ? null : Number(byDate[day.iso]);
      return day;
    });
    var goal = (nutrition.goals || {})[nutrient] || null;
    var target = goal ? Number(goal.target) : null;
    var top = Math.max.apply(
      null,
      days.map(function (d) {
        return d.value || 0;
      }).concat([target || 0, 1])
    ) * 1.15;

    var width = 350, height = 190, left = 8, right = 8, topPad = 18, bottom = 24;
    var plotHeight = height - topPad - bottom;
    var slot = (width - left - right) / 7;
    var y = function (v) {
      return topPad + plotHeight - (v / top) * plotHeight;
    };
    var spoken = days
      .map(function (d) {
        return d.label + " " + (d.value === null ? "no log" : number(d.value, unit) + " " + unit);
      })
      .join(", ");
    var summary = name + " per day, last 7 days: " + spoken + (target ? ". Target " + number(target, unit) + " " + unit + " a day." : ".");
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": summary });
    chart.appendChild(svg("title", {}, summary));
    chart.appendChild(svg("line", { class: "axis", x1: left, x2: width - right, y1: y(0), y2: y(0) }));
    days.forEach(function (d, i) {
      var x = left + i * slot + slot * 0.18;
      var barWidth = slot * 0.64;
      if (d.value === null) {
        chart.appendChild(svg("rect", { class: "bar empty", x: x, y: y(0) - 3, width: barWidth, height: 3 }));
      } else {
        var h = Math.max(y(0) - y(d.value), 2);
        var over = target && d.value >= target;
        chart.appendChild(svg("rect", { class: over ? "bar over" : "bar", x: x, y: y(0) - h, width: barWidth, height: h, rx: 3 }));
        chart.appendChild(svg("text", { class: "value", x: x + barWidth / 2, y: y(0) - h - 4, "text-anchor": "middle" }, number(d.value, unit)));
      }
      chart.appendChild(svg("text", { x: x + barWidth / 2, y: height - 6, "text-anchor": "middle" }, d.label));
    });
    if (target) {
      chart.appendChild(svg("line", { class: "target", x1: left, x2: width - right, y1: y(target), y2: y(target) }));
      chart.appendChild(svg("text", { class: "target-label", x: width - right, y: y(target) - 4, "text-anchor": "end" }, "Target " + number(target, unit)));
    }
    box.replaceChildren(chart);

    var average = (nutrition.averages7d || {})[nutrient];
    var caption =
      nutrition.daysLogged > 0
        ? "Average on logged days: " + number(average, unit) + " " + unit + " (" + nutrition.daysLogged + " of 7 days logged)."
        : "No food logged in the last 7 days.";
    caption += target
      ? " Target " + number(target, unit) + " " + unit + " a day" +
        (goal.average7dPct !== null ? ": " + number(goal.average7dPct) + "% on average." : ".")
      : " No active " + name.toLowerCase() + " goal: ask your coach to suggest one.";
    $("nutrition-caption").textContent = caption;

    var rows = days.map(function (d) {
      return el(
        "tr",
        null,
        el("td", { text: d.label + " " + d.iso.slice(5) }),
        el("td", { text: d.value === null ? "no log" : number(d.value, unit) + " " + unit }),
        el("td", { text: target ? number(target, unit) + " " + unit : "–" })
      );
    });
    var body = $("nutrition-table").tBodies[0];
    body.replaceChildren.apply(body, rows);
  }

  function loadNutrition() {
    return api("GET", userPath("nutrition-snapshot"))
      .then(function (envelope) {
        nutrition = envelope.data;
        if (!nutrientChosen) {
          var withGoal = Object.keys(NUTRIENT_UNITS).filter(function (key) {
            return (nutrition.goals || {})[key];
          });
          $("nutrient").value = withGoal.length ? withGoal[0] : "calories_kcal";
        }
        chartDraw();
      })
      .catch(function (error) {
        if (linkDead) return;
        var again = el("button", { type: "button", className: "secondary", text: "Try again" });
        again.addEventListener("click", loadNutrition);
        $("nutrition-chart").replaceChildren(el("p", { text: friendly(error) }), again);
      });
  }

  // --- Engagement metrics --------------------------------------------------------------------

  function loadMetrics() {
    var list = $("metrics");
    return api("GET", userPath("metrics"))
      .then(function (envelope) {
        var m = envelope.data;
        var tier = m.engagementTier ? m.engagementTier.charAt(0).toUpperCase() + m.engagementTier.slice(1) : "–";
        var rows = [
          ["Current streak", m.currentStreakDays + (m.currentStreakDays === 1 ? " day" : " days")],
          ["Active days (last 14)", String(m.activeDays14d)],
          ["Logs this week", String(m.activities7d)],
          ["Logs in 30 days", String(m.activities30d)],
          ["Tier", tier],
          ["Last active", when(m.lastActiveAt)],
        ];
        list.replaceChildren.apply(
          list,
          rows.map(function (row) {
            return el("div", null, el("dt", { text: row[0] }), el("dd", { text: row[1] }));
          })
        );
      })
      .catch(function (error) {
        if (linkDead) return;
        list.replaceChildren(el("div", null, el("dt", { text: "Engagement" }), el("dd", { text: friendly(error) })));
      });
  }

  // --- Coaching history ----------------------------------------------------------------------

  function turnNodes(session) {
    return [
      el("p", { className: "question" }, el("strong", { text: "You: " }), session.message),
      el("p", { className: "answer-text", text: session.response }),
      el(
        "p",
        { className: "muted small" },
        "Tools: " + ((session.toolsUsed || []).join(", ") || "none") +
          (session.status === "fallback" ? " · answered by the built-in coach" : "")
      ),
    ];
  }

  // A history item is a conversation with its turns, or (older servers) one session.
  function historyItem(item) {
    var turns = Array.isArray(item.turns) ? item.turns : [item];
    var first = turns[0] || {};
    var last = item.lastTurnAt || (turns[turns.length - 1] || {}).created_at;
    var summary = el(
      "summary",
      null,
      first.message || "Conversation",
      el("span", {
        className: "when",
        text: when(last) + (turns.length > 1 ? " · " + turns.length + " questions" : ""),
      })
    );
    var details = el("details", { className: "history-item" }, summary);
    turns.forEach(function (turn) {
      turnNodes(turn).forEach(function (node) {
        details.appendChild(node);
      });
    });
    return el("li", null, details);
  }

  function loadHistory(fromStart) {
    var list = $("history");
    if (fromStart) historyOffset = 0;
    return api("GET", userPath("coaching-history?limit=" + HISTORY_PAGE + "&offset=" + historyOffset))
      .then(function (page) {
        var items = page.data.map(historyItem);
        if (fromStart) {
          if (!items.length) items = [emptyItem("No conversations yet. Ask your coach anything above.")];
          list.replaceChildren.apply(list, items);
        } else {
          items.forEach(function (item) {
            list.appendChild(item);
          });
        }
        historyOffset = page.pagination.nextOffset || historyOffset;
        $("history-more").hidden = page.pagination.nextOffset === null;
      })
      .catch(function (error) {
        sectionFailed(list, error, function () {
          loadHistory(true);
        });
      });
  }

  function loadConsent() {
    return api("GET", userPath(""))
      .then(function (envelope) {
        $("consent").hidden = envelope.data.consent_ai_processing !== false;
      })
      .catch(function () {
        /* the sections say what failed; the consent box also appears on a 403 from /ask */
      });
  }

  // --- Start ---------------------------------------------------------------------------------

  function start() {
    apiRoot = $("gate").getAttribute("data-api-root") || apiRoot;
    token = tokenTake();
    if (!token) {
      gateShow(
        "Open the coach from the YAHealthy app",
        "This page needs your personal link from the app. Open YAHealthy and tap “Coach”."
      );
      return;
    }
    userId = tokenSubject(token);
    if (!userId) {
      linkExpired();
      return;
    }
    $("gate").hidden = true;
    $("app").hidden = false;

    $("ask-form").addEventListener("submit", ask);
    document.querySelectorAll(".chip").forEach(function (chip) {
      chip.addEventListener("click", function () {
        $("ask-message").value = chip.getAttribute("data-question");
        $("ask-message").focus();
      });
    });
    $("new-conversation").addEventListener("click", function () {
      conversationId = null;
      $("new-conversation").hidden = true;
      $("answer").hidden = true;
      $("ask-message").value = "";
      $("ask-message").focus();
    });
    $("consent-grant").addEventListener("click", consentGrant);
    $("nutrient").addEventListener("change", function () {
      nutrientChosen = true;
      chartDraw();
    });
    $("history-more").addEventListener("click", function () {
      loadHistory(false);
    });
    window.addEventListener("offline", function () {
      $("notice").textContent = "You're offline. The coach will answer again when you're back online.";
      $("notice").hidden = false;
    });
    window.addEventListener("online", function () {
      $("notice").hidden = true;
    });

    loadConsent();
    loadSuggested([]);
    loadActive();
    loadInsights();
    loadNutrition();
    loadMetrics();
    loadHistory(true);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
