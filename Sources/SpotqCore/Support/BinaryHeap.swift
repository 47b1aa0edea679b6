/// A binary heap: `pop()` returns the element for which `isBefore` holds against all
/// others. Stale entries are the caller's business (push the new value, skip old ones on pop).
struct BinaryHeap<Element> {
    private(set) var elements: [Element] = []
    let isBefore: (Element, Element) -> Bool

    init(isBefore: @escaping (Element, Element) -> Bool) {
        self.isBefore = isBefore
    }

    var isEmpty: Bool { elements.isEmpty }
    var top: Element? { elements.first }

    mutating func push(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard isBefore(elements[child], elements[parent]) else { break }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> Element? {
        guard !elements.isEmpty else { return nil }
        elements.swapAt(0, elements.count - 1)
        let result = elements.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < elements.count else { break }
            var best = left
            if left + 1 < elements.count && isBefore(elements[left + 1], elements[left]) { best = left + 1 }
            guard isBefore(elements[best], elements[parent]) else { break }
            elements.swapAt(best, parent)
            parent = best
        }
        return result
    }
}
