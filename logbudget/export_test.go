package logbudget

// Visited reports how many entries the budget's sweeps have examined.
func (h *Handler) Visited() int {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	return h.st.visited
}
