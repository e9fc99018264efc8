/* The demo shop's page logic: render products, keep a cart, send e-commerce events. */
;(function () {
  'use strict'
  var config = window.SHOP_CONFIG || {}
  var $ = function (id) { return document.getElementById(id) }
  var logList = $('log')

  function log(text) {
    var li = document.createElement('li')
    li.textContent = new Date().toLocaleTimeString() + ' ' + text
    logList.insertBefore(li, logList.firstChild)
  }

  var fp = window.firstpartyTrack({
    writeKey: config.writeKey,
    endpoint: config.endpoint || '/v1',
    onResult: function (events, status) {
      var names = events.map(function (e) { return e.type === 'track' ? e.event : e.type }).join(', ')
      log(names + ' → ' + status)
    },
  })
  if (!config.writeKey) log('no write key in the config: events will be refused')

  var currency = 'USD'
  var products = []
  var cart = loadCart()
  var cartId = sessionStorage.getItem('cart_id') || ('cart-' + Math.random().toString(36).slice(2, 10))
  sessionStorage.setItem('cart_id', cartId)
  var shownAt = Date.now()

  function money(n) {
    return new Intl.NumberFormat(navigator.language, { style: 'currency', currency: currency }).format(n)
  }

  function loadCart() {
    try { return JSON.parse(localStorage.getItem('shop_cart') || '[]') } catch (e) { return [] }
  }
  function saveCart() { localStorage.setItem('shop_cart', JSON.stringify(cart)) }

  // Segment e-commerce spec product properties.
  function productProps(p, extra) {
    var props = {
      product_id: p.product_id,
      sku: p.sku,
      category: p.category,
      name: p.name,
      brand: p.brand,
      price: p.price,
      currency: currency,
      position: products.indexOf(p) + 1,
      url: location.origin + '/#' + p.product_id,
    }
    for (var k in extra || {}) props[k] = extra[k]
    return props
  }

  function cartProducts() {
    return cart.map(function (line, i) {
      var p = products.find(function (x) { return x.product_id === line.product_id })
      return p ? productProps(p, { quantity: line.quantity, position: i + 1 }) : null
    }).filter(Boolean)
  }
  function cartValue() {
    return Math.round(cartProducts().reduce(function (s, p) { return s + p.price * p.quantity }, 0) * 100) / 100
  }

  function renderCart() {
    var ul = $('cart')
    ul.textContent = ''
    cartProducts().forEach(function (p) {
      var li = document.createElement('li')
      var a = document.createElement('span')
      a.textContent = p.quantity + ' × ' + p.name
      var b = document.createElement('span')
      b.textContent = money(p.price * p.quantity)
      li.append(a, b)
      ul.append(li)
    })
    $('total').textContent = money(cartValue())
    $('purchase').disabled = cart.length === 0
  }

  function renderProducts() {
    var root = $('products')
    products.forEach(function (p) {
      var card = document.createElement('article')
      card.className = 'card'
      card.id = p.product_id
      var img = document.createElement('div')
      img.className = 'img'
      img.textContent = p.image
      var h = document.createElement('h3')
      h.textContent = p.name
      var meta = document.createElement('div')
      meta.className = 'meta'
      meta.textContent = p.brand + ' · ' + p.category + ' · ' + money(p.price)
      var desc = document.createElement('p')
      desc.className = 'desc'
      desc.textContent = p.description
      desc.hidden = true
      var details = document.createElement('button')
      details.type = 'button'
      details.className = 'link'
      details.textContent = 'Details'
      details.addEventListener('click', function () {
        desc.hidden = !desc.hidden
        if (!desc.hidden) fp.track('Product Viewed', productProps(p, { quantity: 1 }))
      })
      var add = document.createElement('button')
      add.type = 'button'
      add.textContent = 'Add to cart'
      add.dataset.productId = p.product_id
      add.addEventListener('click', function () {
        var line = cart.find(function (l) { return l.product_id === p.product_id })
        if (line) line.quantity++
        else cart.push({ product_id: p.product_id, quantity: 1 })
        saveCart()
        renderCart()
        fp.track('Product Added', productProps(p, { quantity: 1, cart_id: cartId }))
      })
      var row = document.createElement('div')
      row.className = 'row'
      row.append(details, add)
      card.append(img, h, meta, desc, row)
      root.append(card)
    })
  }

  function renderWho() {
    var userId = fp.userId()
    $('who').textContent = userId ? 'Signed in as ' + userId : 'Browsing anonymously'
    $('signin').textContent = userId ? 'Sign out' : 'Sign in as demo user'
  }

  $('signin').addEventListener('click', function () {
    if (fp.userId()) {
      fp.reset()
    } else {
      fp.identify('user-42', { name: 'Ada Lovelace', email: 'ada@example.com', plan: 'demo' })
    }
    renderWho()
  })

  $('purchase').addEventListener('click', function () {
    var items = cart.map(function (l) { return { product_id: l.product_id, quantity: l.quantity } })
    var value = cartValue()
    $('purchase').disabled = true
    fp.track('Checkout Started', { cart_id: cartId, value: value, revenue: value, currency: currency, products: cartProducts() })
    // The order itself is the backend's business: it sends "Order Completed" server-side.
    fetch('/api/purchase', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ items: items }),
      credentials: 'same-origin',
    }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error(body.message || res.status)
        cart = []
        saveCart()
        renderCart()
        cartId = 'cart-' + Math.random().toString(36).slice(2, 10)
        sessionStorage.setItem('cart_id', cartId)
        $('message').textContent = 'Order ' + body.order.order_id + ' placed: ' + money(body.order.revenue)
        log('Order Completed (server-side) ' + (body.messageId ? 'accepted' : 'not sent'))
      })
    }).catch(function (err) {
      $('message').textContent = 'Purchase failed: ' + err.message
      $('purchase').disabled = cart.length === 0
    })
  })

  // The visitor's privacy page: the sharing ledger for this browser's first-party id, and
  // a deletion request fanned out to every destination (one receipt each).
  $('mydata').addEventListener('click', function () {
    fetch('/api/privacy/my-data', { credentials: 'same-origin' }).then(function (r) { return r.json() }).then(function (body) {
      if (body.code) return void ($('privacy').textContent = body.message)
      var lines = body.shared.map(function (e) {
        return e.deliveredAt.slice(11, 19) + ' ' + (e.event || e.eventType) + ' → ' + e.destination + ': ' +
          e.fields.map(function (f) { return f.path + (f.treatment === 'raw' ? '' : ' (' + f.treatment + ')') }).join(', ')
      })
      $('privacy').textContent = lines.length ? lines.join('\n') : 'Nothing has been shared about you.'
    })
  })
  $('forget').addEventListener('click', function () {
    fetch('/api/privacy/forget-me', { method: 'POST', credentials: 'same-origin' }).then(function (r) { return r.json() }).then(function (body) {
      if (body.code) return void ($('privacy').textContent = body.message)
      $('privacy').textContent = 'Deletion ' + body.requestId + ':\n' + body.receipts.map(function (r) {
        return r.target + ': ' + r.status + (r.error ? ' (' + r.error.message + ')' : '')
      }).join('\n') + '\nYou are now on the suppression list: nothing you do here is sent anywhere (see /api/stats, "suppressed").'
    })
  })

  // Page leave: time on page and cart size, sent with sendBeacon so it survives the unload.
  addEventListener('pagehide', function () {
    fp.track('Page Left', { path: location.pathname, seconds_on_page: Math.round((Date.now() - shownAt) / 1000), cart_items: cart.length }, { transport: 'beacon' })
  })

  renderWho()
  fp.page('Shop', { category: 'Home' })
  fetch('/api/products').then(function (r) { return r.json() }).then(function (body) {
    currency = body.currency
    products = body.products
    renderProducts()
    renderCart()
    fp.track('Product List Viewed', {
      list_id: 'all-products',
      category: 'All',
      products: products.map(function (p) { return productProps(p) }),
    })
  })
})()
