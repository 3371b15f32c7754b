/* The dashboard's charts (Chart.js, served by the project). The numbers come from the page
 * itself (a JSON block written by the server); every chart also has a table below it. */
(function () {
  "use strict";
  var node = document.getElementById("chart-data");
  if (!node || !window.Chart) return;
  var data = JSON.parse(node.textContent);
  var palette = ["#0b5d7a", "#c75000", "#2e7d32", "#6a1b9a", "#ad1457", "#455a64", "#8d6e00"];

  function perChannel(series) {
    return Object.keys(series).map(function (channel, i) {
      return { label: channel, data: series[channel], backgroundColor: palette[i % palette.length] };
    });
  }

  function bar(id, labels, datasets, options) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: Object.assign({ animation: false, responsive: true, maintainAspectRatio: false,
                               scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }, options || {})
    });
  }

  var stacked = { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } };
  bar("chart-messages", data.days, perChannel(data.messages), stacked);
  bar("chart-conversations", data.days, perChannel(data.conversations), stacked);
  bar("chart-topics", data.topics.labels, [{ label: "answers", data: data.topics.values, backgroundColor: palette[0] }],
      { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } });
  var outcomes = document.getElementById("chart-outcomes");
  if (outcomes) {
    new window.Chart(outcomes, {
      type: "doughnut",
      data: { labels: data.outcomes.labels, datasets: [{ data: data.outcomes.values, backgroundColor: palette }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false }
    });
  }
  bar("chart-feedback", data.feedback.labels, [
    { label: "helpful", data: data.feedback.helpful, backgroundColor: palette[2] },
    { label: "not helpful", data: data.feedback.not_helpful, backgroundColor: palette[1] }
  ]);
})();
