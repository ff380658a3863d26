// The monthly analysis page (SA-DA-006): everything is rendered on the server; this only
// wires the print button.

document.getElementById("print")?.addEventListener("click", () => window.print());
