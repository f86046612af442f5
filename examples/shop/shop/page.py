"""The shop's single HTML page: products and a cart (the E2E suite clicks through it)."""

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Shop</title></head>
<body>
  <h1>Shop <small id="version">{{version}}</small></h1>
  <ul id="products"></ul>
  <p>Cart: <span id="cart-count">0</span> items, total <span id="cart-total">0.00</span></p>
  <button id="checkout" disabled>Place order</button>
  <p id="message" role="status"></p>
  <script>
    const cart = new Map();
    const prices = new Map();
    function render() {
      let count = 0, total = 0;
      for (const [id, qty] of cart) { count += qty; total += qty * prices.get(id); }
      document.getElementById("cart-count").textContent = count;
      document.getElementById("cart-total").textContent = total.toFixed(2);
      document.getElementById("checkout").disabled = count === 0;
    }
    fetch("/api/products").then(r => r.json()).then(data => {
      const list = document.getElementById("products");
      for (const p of data.products) {
        prices.set(p.id, Number(p.price));
        const li = document.createElement("li");
        li.textContent = `${p.name} ${p.price} `;
        const add = document.createElement("button");
        add.textContent = "Add";
        add.dataset.product = p.id;
        add.addEventListener("click", () => {
          cart.set(p.id, (cart.get(p.id) || 0) + 1);
          render();
        });
        li.appendChild(add);
        list.appendChild(li);
      }
    });
    document.getElementById("checkout").addEventListener("click", async () => {
      const items = [...cart].map(([product_id, quantity]) => ({product_id, quantity}));
      const response = await fetch("/api/orders", {method: "POST",
        headers: {"Content-Type": "application/json"}, body: JSON.stringify({items})});
      const body = await response.json();
      document.getElementById("message").textContent = response.ok
        ? `Order ${body.id} placed: ${body.total}` : `Error: ${body.error}`;
      if (response.ok) { cart.clear(); render(); }
    });
  </script>
</body>
</html>
"""
