/*
 * A tiny first-party tracking client (no build step, no dependencies) that speaks
 * analytics.js's wire format: one event per POST to {endpoint}/{t,p,i}, or a batch to
 * {endpoint}/b, with Content-Type text/plain (no CORS preflight) and the writeKey in
 * the body. Keeps ajs_anonymous_id / ajs_user_id cookies like analytics.js does, and
 * uses navigator.sendBeacon when the page is going away.
 *
 *   const fp = firstpartyTrack({ writeKey: 'demo-write-key', endpoint: '/v1' })
 *   fp.page('Home')
 *   fp.track('Product Added', { product_id: 'p-1', price: 12, quantity: 1 })
 *   fp.identify('user-42', { email: 'ada@example.com' })
 *   fp.track('Page Left', {}, { transport: 'beacon' })
 */
;(function () {
  'use strict'
  var VERSION = '0.1.0'
  var YEAR = 365 * 24 * 3600
  var SHORT = { track: 't', page: 'p', identify: 'i', screen: 's', group: 'g', alias: 'a' }
  var MAX_PENDING = 100

  function uuid() {
    // crypto.randomUUID needs a secure context; getRandomValues works on http://lan-ip too.
    var b = new Uint8Array(16)
    crypto.getRandomValues(b)
    b[6] = (b[6] & 0x0f) | 0x40
    b[8] = (b[8] & 0x3f) | 0x80
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1) }).join('')
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20)
  }

  function getCookie(name) {
    var parts = document.cookie ? document.cookie.split('; ') : []
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf('=')
      if (parts[i].slice(0, eq) !== name) continue
      var v = parts[i].slice(eq + 1)
      try { v = decodeURIComponent(v) } catch (e) { /* keep */ }
      // analytics.js has written JSON-quoted values; accept both.
      if (v.length >= 2 && v.charAt(0) === '"' && v.charAt(v.length - 1) === '"') v = v.slice(1, -1)
      return v || null
    }
    return null
  }

  function setCookie(name, value, maxAge) {
    var secure = location.protocol === 'https:' ? '; Secure' : ''
    document.cookie = name + '=' + encodeURIComponent(value) + '; Path=/; Max-Age=' + maxAge + '; SameSite=Lax' + secure
  }

  function pageContext() {
    return {
      path: location.pathname,
      referrer: document.referrer,
      search: location.search,
      title: document.title,
      url: location.href,
    }
  }

  window.firstpartyTrack = function firstpartyTrack(options) {
    var writeKey = options.writeKey
    var endpoint = (options.endpoint || '/v1').replace(/\/$/, '')
    var onResult = options.onResult || function () {}
    var pending = [] // events whose send failed in a retryable way
    var retryTimer = null
    var retryDelay = 1000

    var anonymousId = getCookie('ajs_anonymous_id')
    if (!anonymousId) {
      anonymousId = uuid()
      setCookie('ajs_anonymous_id', anonymousId, YEAR)
    }

    function build(type, fields) {
      var userId = getCookie('ajs_user_id')
      var ev = {
        type: type,
        messageId: 'fp-' + uuid(),
        anonymousId: anonymousId,
        timestamp: new Date().toISOString(),
        context: {
          page: pageContext(),
          userAgent: navigator.userAgent,
          locale: navigator.language,
          library: { name: 'firstparty-track', version: VERSION },
        },
        integrations: {},
      }
      if (userId) ev.userId = userId
      for (var k in fields) if (Object.prototype.hasOwnProperty.call(fields, k)) ev[k] = fields[k]
      return ev
    }

    function body(obj) {
      obj.writeKey = writeKey
      obj.sentAt = new Date().toISOString()
      return JSON.stringify(obj)
    }

    function keep(events) {
      for (var i = 0; i < events.length; i++) pending.push(events[i])
      if (pending.length > MAX_PENDING) pending.splice(0, pending.length - MAX_PENDING)
      if (!retryTimer) {
        retryTimer = setTimeout(retry, retryDelay)
        retryDelay = Math.min(retryDelay * 2, 30000)
      }
    }

    function retry() {
      retryTimer = null
      if (!pending.length) return
      var batch = pending.splice(0, pending.length)
      post('/b', { batch: batch }, batch)
    }

    // POST with fetch (keepalive, so it survives a navigation). 408/429/5xx and network
    // errors are retried with the same messageId (the router dedups); other 4xx are not.
    function post(path, payload, events) {
      return fetch(endpoint + path, {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain' },
        body: body(payload),
        keepalive: true,
        credentials: 'same-origin',
      }).then(function (res) {
        onResult(events, res.status)
        if (res.status === 408 || res.status === 429 || res.status >= 500) keep(events)
        else if (res.ok) retryDelay = 1000
        else res.json().then(function (e) { console.warn('firstparty: event refused', res.status, e) }, function () {})
        return res.status
      }, function (err) {
        onResult(events, 0)
        keep(events)
        return 0
      })
    }

    // sendBeacon survives the page closing; it sends text/plain;charset=UTF-8.
    function beacon(events) {
      var ok = !!navigator.sendBeacon && navigator.sendBeacon(endpoint + '/b', body({ batch: events }))
      onResult(events, ok ? 'beacon' : 'beacon-failed')
      return ok
    }

    function send(type, fields, opts) {
      var ev = build(type, fields)
      if (opts && opts.transport === 'beacon') {
        var batch = pending.splice(0, pending.length)
        batch.push(ev)
        if (!beacon(batch)) keep(batch)
        return Promise.resolve(ev)
      }
      return post('/' + SHORT[type], ev, [ev]).then(function () { return ev })
    }

    // Page going away: hand whatever still waits for a retry to the browser.
    function flushOnLeave() {
      if (!pending.length) return
      var batch = pending.splice(0, pending.length)
      if (retryTimer) { clearTimeout(retryTimer); retryTimer = null }
      if (!beacon(batch)) pending = batch
    }
    addEventListener('pagehide', flushOnLeave)
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'hidden') flushOnLeave()
    })

    return {
      page: function (name, properties, opts) {
        var props = pageContext()
        for (var k in properties || {}) props[k] = properties[k]
        return send('page', { name: name, properties: props }, opts)
      },
      track: function (event, properties, opts) {
        return send('track', { event: event, properties: properties || {} }, opts)
      },
      identify: function (userId, traits, opts) {
        if (userId) setCookie('ajs_user_id', String(userId), YEAR)
        return send('identify', { userId: userId || undefined, traits: traits || {} }, opts)
      },
      /** Forget the user (sign out): a new anonymousId, no userId. */
      reset: function () {
        setCookie('ajs_user_id', '', 0)
        anonymousId = uuid()
        setCookie('ajs_anonymous_id', anonymousId, YEAR)
      },
      anonymousId: function () { return anonymousId },
      userId: function () { return getCookie('ajs_user_id') },
    }
  }
})()
